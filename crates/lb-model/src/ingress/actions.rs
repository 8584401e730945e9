//! A backend's action: forward to a Service port, or the
//! `actions.<service>` annotation (fixed-response, redirect, forward to
//! target groups, weighted and sticky) of a `use-annotation` backend; and
//! the JSON of `actions.<service>` and `conditions.<service>`.

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::IngressBackend;
use serde::Deserialize;

use super::USE_ANNOTATION;
use super::stack::Builder;
use crate::ModelError;
use crate::annotations::{self as a, ing_key};
use crate::model::{Action, TargetGroupRef, WeightedTarget};

impl Builder<'_> {
    /// A backend's action and the extra conditions of
    /// `conditions.<service>`.
    pub(super) fn backend(
        &mut self,
        i: usize,
        backend: &IngressBackend,
        field: &str,
    ) -> Result<(Action, Vec<ConditionCfg>), ModelError> {
        let Some(svc) = &backend.service else {
            return Err(ModelError::spec(
                field,
                "only Service backends are supported",
            ));
        };
        let ann = self.member(i).annotations().clone();
        let cond_key = ing_key(&format!("conditions.{}", svc.name));
        let conditions: Vec<ConditionCfg> =
            a::json(&ann, &cond_key, CONDITIONS_ACCEPTED)?.unwrap_or_default();
        for c in &conditions {
            c.validate().map_err(|why| {
                ModelError::invalid(
                    &cond_key,
                    a::string(&ann, &cond_key).unwrap_or_default(),
                    format!("{CONDITIONS_ACCEPTED}; {why}"),
                )
            })?;
        }
        let port = svc.port.clone().unwrap_or_default();
        let action = if port.name.as_deref() == Some(USE_ANNOTATION) {
            let key = ing_key(&format!("actions.{}", svc.name));
            match a::json::<ActionCfg>(&ann, &key, ACTION_ACCEPTED)? {
                None => fixed_503("Backend action does not exist"),
                Some(cfg) => {
                    cfg.validate().map_err(|why| {
                        ModelError::invalid(
                            &key,
                            a::string(&ann, &key).unwrap_or_default(),
                            format!("{ACTION_ACCEPTED}; {why}"),
                        )
                    })?;
                    self.action(i, cfg, field)?
                }
            }
        } else {
            let port = match (&port.name, port.number) {
                (Some(n), _) if !n.is_empty() => n.clone(),
                (_, Some(n)) => n.to_string(),
                _ => {
                    return Err(ModelError::spec(
                        format!("{field}.service.port"),
                        "needs a name or a number",
                    ));
                }
            };
            self.action(
                i,
                ActionCfg {
                    type_: "forward".to_string(),
                    forward_config: Some(ForwardCfg {
                        target_groups: vec![TupleCfg {
                            service_name: Some(svc.name.clone()),
                            service_port: Some(serde_json::Value::String(port)),
                            ..TupleCfg::default()
                        }],
                        target_group_stickiness_config: None,
                    }),
                    ..ActionCfg::default()
                },
                field,
            )?
        };
        Ok((action, conditions))
    }

    fn action(&mut self, i: usize, cfg: ActionCfg, field: &str) -> Result<Action, ModelError> {
        match cfg.type_.as_str() {
            "fixed-response" => {
                let f = cfg.fixed_response_config.unwrap_or_default();
                Ok(Action::FixedResponse {
                    status_code: f.status_code,
                    content_type: f.content_type,
                    message_body: f.message_body,
                })
            }
            "redirect" => {
                let r = cfg.redirect_config.unwrap_or_default();
                Ok(Action::Redirect {
                    protocol: r.protocol,
                    port: r.port,
                    host: r.host,
                    path: r.path,
                    query: r.query,
                    status_code: r.status_code,
                })
            }
            _ => {
                let fwd = match (cfg.target_group_arn, cfg.forward_config) {
                    (Some(arn), _) => ForwardCfg {
                        target_groups: vec![TupleCfg {
                            target_group_arn: Some(arn),
                            ..TupleCfg::default()
                        }],
                        target_group_stickiness_config: None,
                    },
                    (None, Some(f)) => f,
                    (None, None) => ForwardCfg::default(),
                };
                let ns = self.member(i).namespace().to_string();
                let all_services = self.services;
                let services: BTreeSet<&String> = fwd
                    .target_groups
                    .iter()
                    .filter_map(|t| t.service_name.as_ref())
                    .collect();
                let single = fwd.target_groups.len() == 1 && services.len() == 1;
                let mut targets = vec![];
                for t in &fwd.target_groups {
                    let weight = t.weight.map(|w| w as i32);
                    if let Some(arn) = &t.target_group_arn {
                        targets.push(WeightedTarget {
                            target_group: TargetGroupRef::Arn(arn.clone()),
                            weight,
                        });
                        continue;
                    }
                    let svc_name = t.service_name.clone().unwrap_or_default();
                    let port = port_key(t.service_port.as_ref());
                    let Some(svc) = all_services.get(&(ns.clone(), svc_name.clone())) else {
                        if single {
                            return Ok(fixed_503("Backend service does not exist"));
                        }
                        return Err(ModelError::spec(
                            field,
                            format!("Service {ns}/{svc_name} not found"),
                        ));
                    };
                    let rid = self.target_group(i, svc, &port, field)?;
                    targets.push(WeightedTarget {
                        target_group: TargetGroupRef::Managed(rid),
                        weight,
                    });
                }
                let stickiness_seconds = fwd
                    .target_group_stickiness_config
                    .filter(|s| s.enabled == Some(true))
                    .map(|s| s.duration_seconds.map_or(3600, |d| d as i32));
                Ok(Action::Forward {
                    target_groups: targets,
                    stickiness_seconds,
                })
            }
        }
    }
}

fn fixed_503(body: &str) -> Action {
    Action::FixedResponse {
        status_code: "503".to_string(),
        content_type: Some("text/plain".to_string()),
        message_body: Some(body.to_string()),
    }
}

/// A JSON servicePort (number, or a string that may hold a number) as the
/// port key.
fn port_key(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

const ACTION_ACCEPTED: &str = r#"a JSON action: {"type": "fixed-response", "fixedResponseConfig": {...}}, {"type": "redirect", "redirectConfig": {...}} or {"type": "forward", "targetGroupARN": ...} / {"type": "forward", "forwardConfig": {"targetGroups": [...]}}"#;
const CONDITIONS_ACCEPTED: &str = r#"a JSON list of conditions, each {"field": F, ...Config: {"values": [...]}} with F one of host-header, http-header, http-request-method, path-pattern, query-string, source-ip"#;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionCfg {
    #[serde(rename = "type", default)]
    type_: String,
    #[serde(rename = "targetGroupARN", default)]
    target_group_arn: Option<String>,
    #[serde(default)]
    fixed_response_config: Option<FixedResponseCfg>,
    #[serde(default)]
    redirect_config: Option<RedirectCfg>,
    #[serde(default)]
    forward_config: Option<ForwardCfg>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FixedResponseCfg {
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    message_body: Option<String>,
    #[serde(default)]
    status_code: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RedirectCfg {
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    port: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    status_code: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ForwardCfg {
    #[serde(default)]
    target_groups: Vec<TupleCfg>,
    #[serde(default)]
    target_group_stickiness_config: Option<StickinessCfg>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TupleCfg {
    #[serde(rename = "targetGroupARN", default)]
    target_group_arn: Option<String>,
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    service_port: Option<serde_json::Value>,
    #[serde(default)]
    weight: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StickinessCfg {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    duration_seconds: Option<i64>,
}

impl ActionCfg {
    fn validate(&self) -> Result<(), String> {
        match self.type_.as_str() {
            "fixed-response" => match &self.fixed_response_config {
                None => Err("fixedResponseConfig is missing".to_string()),
                Some(f) if f.status_code.is_empty() => {
                    Err("fixedResponseConfig.statusCode is required".to_string())
                }
                Some(_) => Ok(()),
            },
            "redirect" => match &self.redirect_config {
                None => Err("redirectConfig is missing".to_string()),
                Some(r) if r.status_code.is_empty() => {
                    Err("redirectConfig.statusCode is required".to_string())
                }
                Some(_) => Ok(()),
            },
            "forward" => {
                if self.target_group_arn.is_some() == self.forward_config.is_some() {
                    return Err("give exactly one of targetGroupARN and forwardConfig".to_string());
                }
                let Some(f) = &self.forward_config else {
                    return Ok(());
                };
                if f.target_groups.is_empty() {
                    return Err("forwardConfig.targetGroups is empty".to_string());
                }
                for t in &f.target_groups {
                    if t.target_group_arn.is_some() == t.service_name.is_some() {
                        return Err(
                            "each target group needs exactly one of targetGroupARN and serviceName"
                                .to_string(),
                        );
                    }
                    let port_ok = match &t.service_port {
                        Some(serde_json::Value::Number(n)) => n.as_i64().is_some(),
                        Some(serde_json::Value::String(s)) => !s.is_empty(),
                        _ => false,
                    };
                    if t.service_name.is_some() && !port_ok {
                        return Err("a target group with serviceName needs servicePort".to_string());
                    }
                    if f.target_groups.len() > 1 && t.weight.is_none() {
                        return Err(
                            "weight must be set when forwarding to several target groups"
                                .to_string(),
                        );
                    }
                }
                Ok(())
            }
            other => Err(format!("unknown action type \"{other}\"")),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct ValuesCfg {
    #[serde(default)]
    pub(super) values: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HttpHeaderCfg {
    #[serde(default)]
    pub(super) http_header_name: String,
    #[serde(default)]
    pub(super) values: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct KeyValueCfg {
    #[serde(default)]
    pub(super) key: Option<String>,
    #[serde(default)]
    pub(super) value: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct QueryStringCfg {
    #[serde(default)]
    pub(super) values: Vec<KeyValueCfg>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConditionCfg {
    #[serde(default)]
    pub(super) field: String,
    #[serde(default)]
    pub(super) host_header_config: Option<ValuesCfg>,
    #[serde(default)]
    pub(super) http_header_config: Option<HttpHeaderCfg>,
    #[serde(default)]
    pub(super) http_request_method_config: Option<ValuesCfg>,
    #[serde(default)]
    pub(super) path_pattern_config: Option<ValuesCfg>,
    #[serde(default)]
    pub(super) query_string_config: Option<QueryStringCfg>,
    #[serde(rename = "sourceIPConfig", default)]
    pub(super) source_ip_config: Option<ValuesCfg>,
}

impl ConditionCfg {
    fn validate(&self) -> Result<(), String> {
        let values = |name: &str, v: Option<&Vec<String>>| match v {
            None => Err(format!("{name} is missing")),
            Some(v) if v.is_empty() => Err(format!("{name}.values is empty")),
            Some(_) => Ok(()),
        };
        match self.field.as_str() {
            "host-header" => values(
                "hostHeaderConfig",
                self.host_header_config.as_ref().map(|c| &c.values),
            ),
            "path-pattern" => values(
                "pathPatternConfig",
                self.path_pattern_config.as_ref().map(|c| &c.values),
            ),
            "http-request-method" => values(
                "httpRequestMethodConfig",
                self.http_request_method_config.as_ref().map(|c| &c.values),
            ),
            "source-ip" => values(
                "sourceIPConfig",
                self.source_ip_config.as_ref().map(|c| &c.values),
            ),
            "http-header" => match &self.http_header_config {
                None => Err("httpHeaderConfig is missing".to_string()),
                Some(h) if h.values.is_empty() => {
                    Err("httpHeaderConfig.values is empty".to_string())
                }
                Some(h) if h.http_header_name.is_empty() => {
                    Err("httpHeaderConfig.httpHeaderName is empty".to_string())
                }
                Some(_) => Ok(()),
            },
            "query-string" => match &self.query_string_config {
                None => Err("queryStringConfig is missing".to_string()),
                Some(q) if q.values.is_empty() => {
                    Err("queryStringConfig.values is empty".to_string())
                }
                Some(q) if q.values.iter().any(|kv| kv.value.is_empty()) => {
                    Err("queryStringConfig values need a value".to_string())
                }
                Some(_) => Ok(()),
            },
            other => Err(format!("unknown field \"{other}\"")),
        }
    }
}
