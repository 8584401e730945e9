//! Between the model's listeners, rules and actions and ELBv2's types, and
//! the canonical forms both are compared in (ELBv2 fills in defaults the
//! model leaves out: a forward weight of 1, redirect placeholders).

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::{
    Action as SdkAction, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig,
    HostHeaderConditionConfig, HttpHeaderConditionConfig, HttpRequestMethodConditionConfig,
    PathPatternConditionConfig, QueryStringConditionConfig, QueryStringKeyValuePair,
    RedirectActionConfig, RedirectActionStatusCodeEnum, RuleCondition, SourceIpConditionConfig,
    TargetGroupStickinessConfig, TargetGroupTuple,
};
use outrigger_lb_model::model::{Action, Condition, TargetGroupRef, WeightedTarget};

/// The model's action with every managed target group replaced by its ARN;
/// `None` when one is not known (not created yet).
pub fn resolve(action: &Action, arns: &BTreeMap<String, String>) -> Option<Action> {
    let mut a = action.clone();
    if let Action::Forward { target_groups, .. } = &mut a {
        for t in target_groups.iter_mut() {
            if let TargetGroupRef::Managed(id) = &t.target_group {
                t.target_group = TargetGroupRef::Arn(arns.get(id)?.clone());
            }
        }
    }
    Some(canonical_action(a))
}

/// Defaults made explicit and lists sorted, so equal meanings compare equal.
pub fn canonical_action(a: Action) -> Action {
    match a {
        Action::Forward {
            mut target_groups,
            stickiness_seconds,
        } => {
            for t in target_groups.iter_mut() {
                t.weight = Some(t.weight.unwrap_or(1));
            }
            target_groups.sort_by(|x, y| x.target_group.cmp(&y.target_group));
            Action::Forward {
                target_groups,
                stickiness_seconds,
            }
        }
        Action::Redirect {
            protocol,
            port,
            host,
            path,
            query,
            status_code,
        } => Action::Redirect {
            protocol: Some(protocol.unwrap_or_else(|| "#{protocol}".into())),
            port: Some(port.unwrap_or_else(|| "#{port}".into())),
            host: Some(host.unwrap_or_else(|| "#{host}".into())),
            path: Some(path.unwrap_or_else(|| "/#{path}".into())),
            query: Some(query.unwrap_or_else(|| "#{query}".into())),
            status_code,
        },
        other => other,
    }
}

/// Sorted values in every condition, and conditions sorted by field.
pub fn canonical_conditions(mut cs: Vec<Condition>) -> Vec<Condition> {
    for c in cs.iter_mut() {
        match c {
            Condition::HostHeader(v)
            | Condition::PathPattern(v)
            | Condition::HttpRequestMethod(v)
            | Condition::SourceIp(v) => v.sort(),
            Condition::HttpHeader { values, .. } => values.sort(),
            Condition::QueryString(v) => v.sort(),
        }
    }
    cs.sort_by_key(|c| format!("{c:?}"));
    cs
}

/// An ELBv2 action (resolved: target groups by ARN).
pub fn to_sdk_action(a: &Action) -> SdkAction {
    match a {
        Action::Forward {
            target_groups,
            stickiness_seconds,
        } => {
            let tuples = target_groups
                .iter()
                .map(|t| {
                    TargetGroupTuple::builder()
                        .set_target_group_arn(arn_of(t))
                        .set_weight(t.weight)
                        .build()
                })
                .collect();
            let mut fwd = ForwardActionConfig::builder().set_target_groups(Some(tuples));
            if let Some(s) = stickiness_seconds {
                fwd = fwd.target_group_stickiness_config(
                    TargetGroupStickinessConfig::builder()
                        .enabled(true)
                        .duration_seconds(*s)
                        .build(),
                );
            }
            let mut b = SdkAction::builder().r#type(ActionTypeEnum::Forward);
            // The simple form when there is one group: what ELBv2 and the
            // AWS Load Balancer Controller both write.
            if target_groups.len() == 1 && stickiness_seconds.is_none() {
                b = b.set_target_group_arn(arn_of(&target_groups[0]));
            } else {
                b = b.forward_config(fwd.build());
            }
            b.build()
        }
        Action::FixedResponse {
            status_code,
            content_type,
            message_body,
        } => SdkAction::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code(status_code)
                    .set_content_type(content_type.clone())
                    .set_message_body(message_body.clone())
                    .build(),
            )
            .build(),
        Action::Redirect {
            protocol,
            port,
            host,
            path,
            query,
            status_code,
        } => SdkAction::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .set_protocol(protocol.clone())
                    .set_port(port.clone())
                    .set_host(host.clone())
                    .set_path(path.clone())
                    .set_query(query.clone())
                    .status_code(RedirectActionStatusCodeEnum::from(status_code.as_str()))
                    .build(),
            )
            .build(),
    }
}

fn arn_of(t: &WeightedTarget) -> Option<String> {
    match &t.target_group {
        TargetGroupRef::Arn(a) | TargetGroupRef::Managed(a) => Some(a.clone()),
    }
}

/// The model's form of an ELBv2 action (target groups by ARN), canonical.
pub fn from_sdk_action(a: &SdkAction) -> Option<Action> {
    let action = match a.r#type()? {
        ActionTypeEnum::Forward => {
            let mut target_groups: Vec<WeightedTarget> = a
                .forward_config()
                .map(|f| {
                    f.target_groups()
                        .iter()
                        .filter_map(|t| {
                            Some(WeightedTarget {
                                target_group: TargetGroupRef::Arn(t.target_group_arn()?.into()),
                                weight: t.weight(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            if target_groups.is_empty()
                && let Some(arn) = a.target_group_arn()
            {
                target_groups.push(WeightedTarget {
                    target_group: TargetGroupRef::Arn(arn.into()),
                    weight: None,
                });
            }
            let stickiness_seconds = a
                .forward_config()
                .and_then(|f| f.target_group_stickiness_config())
                .filter(|s| s.enabled() == Some(true))
                .and_then(|s| s.duration_seconds());
            Action::Forward {
                target_groups,
                stickiness_seconds,
            }
        }
        ActionTypeEnum::FixedResponse => {
            let f = a.fixed_response_config()?;
            Action::FixedResponse {
                status_code: f.status_code()?.to_string(),
                content_type: f.content_type().map(str::to_string),
                message_body: f.message_body().map(str::to_string),
            }
        }
        ActionTypeEnum::Redirect => {
            let r = a.redirect_config()?;
            Action::Redirect {
                protocol: r.protocol().map(str::to_string),
                port: r.port().map(str::to_string),
                host: r.host().map(str::to_string),
                path: r.path().map(str::to_string),
                query: r.query().map(str::to_string),
                status_code: r.status_code()?.as_str().to_string(),
            }
        }
        _ => return None,
    };
    Some(canonical_action(action))
}

pub fn to_sdk_condition(c: &Condition) -> RuleCondition {
    let b = RuleCondition::builder();
    match c {
        Condition::HostHeader(v) => b.field("host-header").host_header_config(
            HostHeaderConditionConfig::builder()
                .set_values(Some(v.clone()))
                .build(),
        ),
        Condition::PathPattern(v) => b.field("path-pattern").path_pattern_config(
            PathPatternConditionConfig::builder()
                .set_values(Some(v.clone()))
                .build(),
        ),
        Condition::HttpHeader { name, values } => b.field("http-header").http_header_config(
            HttpHeaderConditionConfig::builder()
                .http_header_name(name)
                .set_values(Some(values.clone()))
                .build(),
        ),
        Condition::HttpRequestMethod(v) => {
            b.field("http-request-method").http_request_method_config(
                HttpRequestMethodConditionConfig::builder()
                    .set_values(Some(v.clone()))
                    .build(),
            )
        }
        Condition::QueryString(v) => b.field("query-string").query_string_config(
            QueryStringConditionConfig::builder()
                .set_values(Some(
                    v.iter()
                        .map(|(k, val)| {
                            QueryStringKeyValuePair::builder()
                                .set_key(k.clone())
                                .value(val)
                                .build()
                        })
                        .collect(),
                ))
                .build(),
        ),
        Condition::SourceIp(v) => b.field("source-ip").source_ip_config(
            SourceIpConditionConfig::builder()
                .set_values(Some(v.clone()))
                .build(),
        ),
    }
    .build()
}

/// The model's form of an ELBv2 rule condition (from its config, or from
/// the legacy `Values` list).
pub fn from_sdk_condition(c: &RuleCondition) -> Option<Condition> {
    let legacy = || c.values().to_vec();
    Some(match c.field()? {
        "host-header" => Condition::HostHeader(
            c.host_header_config()
                .map(|h| h.values().to_vec())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(legacy),
        ),
        "path-pattern" => Condition::PathPattern(
            c.path_pattern_config()
                .map(|h| h.values().to_vec())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(legacy),
        ),
        "http-header" => {
            let h = c.http_header_config()?;
            Condition::HttpHeader {
                name: h.http_header_name()?.to_string(),
                values: h.values().to_vec(),
            }
        }
        "http-request-method" => {
            Condition::HttpRequestMethod(c.http_request_method_config()?.values().to_vec())
        }
        "query-string" => Condition::QueryString(
            c.query_string_config()?
                .values()
                .iter()
                .map(|p| {
                    (
                        p.key().map(str::to_string),
                        p.value().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        ),
        "source-ip" => Condition::SourceIp(c.source_ip_config()?.values().to_vec()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(arn: &str, weight: Option<i32>) -> Action {
        Action::Forward {
            target_groups: vec![WeightedTarget {
                target_group: TargetGroupRef::Arn(arn.into()),
                weight,
            }],
            stickiness_seconds: None,
        }
    }

    #[test]
    fn actions_round_trip_through_the_sdk_types() {
        let cases = [
            fwd("arn:tg/a", None),
            Action::Forward {
                target_groups: vec![
                    WeightedTarget {
                        target_group: TargetGroupRef::Arn("arn:tg/b".into()),
                        weight: Some(20),
                    },
                    WeightedTarget {
                        target_group: TargetGroupRef::Arn("arn:tg/a".into()),
                        weight: Some(80),
                    },
                ],
                stickiness_seconds: Some(60),
            },
            Action::FixedResponse {
                status_code: "404".into(),
                content_type: Some("text/plain".into()),
                message_body: None,
            },
            Action::Redirect {
                protocol: Some("HTTPS".into()),
                port: Some("443".into()),
                host: None,
                path: None,
                query: None,
                status_code: "HTTP_301".into(),
            },
        ];
        for a in cases {
            let back = from_sdk_action(&to_sdk_action(&a));
            assert_eq!(back, Some(canonical_action(a.clone())), "{a:?}");
        }
    }

    #[test]
    fn a_forward_weight_of_one_is_the_default() {
        assert_eq!(
            canonical_action(fwd("x", None)),
            canonical_action(fwd("x", Some(1)))
        );
        assert_ne!(
            canonical_action(fwd("x", None)),
            canonical_action(fwd("y", None))
        );
    }

    #[test]
    fn managed_groups_resolve_to_their_arns() {
        let a = Action::Forward {
            target_groups: vec![WeightedTarget {
                target_group: TargetGroupRef::Managed("ns/svc:80".into()),
                weight: None,
            }],
            stickiness_seconds: None,
        };
        let arns = BTreeMap::from([("ns/svc:80".to_string(), "arn:tg/1".to_string())]);
        assert_eq!(
            resolve(&a, &arns),
            Some(canonical_action(fwd("arn:tg/1", None)))
        );
        assert_eq!(resolve(&a, &BTreeMap::new()), None);
    }

    #[test]
    fn conditions_round_trip_and_compare_as_sets() {
        let cs = vec![
            Condition::PathPattern(vec!["/foo/*".into(), "/foo".into()]),
            Condition::HostHeader(vec!["example.com".into()]),
            Condition::HttpHeader {
                name: "X-Env".into(),
                values: vec!["dev".into()],
            },
            Condition::HttpRequestMethod(vec!["GET".into()]),
            Condition::QueryString(vec![(Some("a".into()), "1".into())]),
            Condition::SourceIp(vec!["10.0.0.0/8".into()]),
        ];
        let back: Vec<Condition> = cs
            .iter()
            .map(|c| from_sdk_condition(&to_sdk_condition(c)).expect("condition"))
            .collect();
        assert_eq!(canonical_conditions(back), canonical_conditions(cs.clone()));
        let mut reversed = cs.clone();
        reversed.reverse();
        assert_eq!(canonical_conditions(reversed), canonical_conditions(cs));
    }
}
