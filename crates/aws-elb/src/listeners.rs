//! The executor for listeners, their certificates and their rules: what
//! ELBv2 has is remembered from the last apply or described, the planner
//! ([`crate::plan`]) compares it with what the stack wants, and exactly the
//! calls its plan lists are made.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::types::{Certificate, ProtocolEnum, RuleCondition};
use outrigger_lb_model::model::Listener;
use outrigger_runtime::sync::LockExt;

use crate::{
    Elb, ElbError, api, canonical_conditions, convert,
    inventory::{ListenerKey, ListenerState, RuleKey, Rules},
    plan::{self, ListenerOp, ListenerStep, RuleStep, WantedRule},
};

impl Elb {
    pub(crate) async fn ensure_listeners(
        &self,
        lb_arn: &str,
        created: bool,
        listeners: &[Listener],
        tg_arns: &BTreeMap<String, String>,
    ) -> Result<(), ElbError> {
        let r = self
            .sync_listeners(lb_arn, created, listeners, tg_arns)
            .await;
        if r.is_err() {
            // Part of it may be applied: look at ELBv2 again next time.
            self.applied.locked().listeners.remove(lb_arn);
        }
        r
    }

    async fn sync_listeners(
        &self,
        lb_arn: &str,
        created: bool,
        listeners: &[Listener],
        tg_arns: &BTreeMap<String, String>,
    ) -> Result<(), ElbError> {
        let wanted = plan::resolve_listeners(listeners, tg_arns)?;
        let fingerprint = plan::fingerprint(&wanted);
        let cached = self.applied.locked().listeners.get(lb_arn).cloned();
        if let Some((fp, _)) = &cached
            && *fp == fingerprint
        {
            return Ok(());
        }
        let known = cached.is_some();
        let mut actual: BTreeMap<i32, ListenerState> = cached.map(|(_, s)| s).unwrap_or_default();
        if !created && !known {
            actual.extend(self.describe_listeners(lb_arn).await?);
        }
        let mut now: BTreeMap<i32, ListenerState> = BTreeMap::new();
        for step in plan::listeners(&actual, &wanted) {
            let step = match step {
                ListenerStep::Delete { port, arn } => {
                    self.elbv2
                        .delete_listener()
                        .listener_arn(&arn)
                        .send()
                        .await
                        .map_err(api("DeleteListener"))?;
                    tracing::info!(arn = %arn, port, "deleted listener");
                    continue;
                }
                ListenerStep::Apply(step) => *step,
            };
            let l = step.wanted.listener;
            let default = &step.wanted.default_action;
            let certs: Option<Vec<Certificate>> = (!l.certificates.is_empty()).then(|| {
                // The first certificate is the listener's default.
                vec![
                    Certificate::builder()
                        .certificate_arn(&l.certificates[0])
                        .build(),
                ]
            });
            let modify = match &step.op {
                ListenerOp::Create | ListenerOp::Keep { .. } => false,
                ListenerOp::Modify { .. } => true,
                ListenerOp::Compare { arn, have } => {
                    // Extra certificates are listed apart from the default.
                    let certificates = self.listener_certificates(arn).await?;
                    plan::listener_differs(have, certificates, &step.key)
                }
            };
            let listener_arn = match step.op.arn() {
                Some(arn) => {
                    if modify {
                        self.elbv2
                            .modify_listener()
                            .listener_arn(arn)
                            .protocol(ProtocolEnum::from(l.protocol.as_str()))
                            .port(l.port)
                            .set_certificates(certs)
                            .set_ssl_policy(step.key.ssl_policy.clone())
                            .set_alpn_policy(l.alpn_policy.clone().map(|a| vec![a]))
                            .default_actions(convert::to_sdk_action(default))
                            .send()
                            .await
                            .map_err(api("ModifyListener"))?;
                    }
                    arn.to_string()
                }
                None => {
                    let r = self
                        .elbv2
                        .create_listener()
                        .load_balancer_arn(lb_arn)
                        .protocol(ProtocolEnum::from(l.protocol.as_str()))
                        .port(l.port)
                        .set_certificates(certs)
                        .set_ssl_policy(step.key.ssl_policy.clone())
                        .set_alpn_policy(l.alpn_policy.clone().map(|a| vec![a]))
                        .default_actions(convert::to_sdk_action(default))
                        .send()
                        .await
                        .map_err(api("CreateListener"))?;
                    let arn = r
                        .listeners()
                        .first()
                        .and_then(|l| l.listener_arn())
                        .unwrap_or_default()
                        .to_string();
                    tracing::info!(arn = %arn, port = l.port, "created listener");
                    arn
                }
            };
            if l.certificates.len() > 1 {
                self.sync_extra_certificates(&listener_arn, &l.certificates)
                    .await?;
            }
            let rules_now = self
                .ensure_rules(&listener_arn, step.known_rules, &step.wanted.rules)
                .await?;
            now.insert(
                l.port,
                ListenerState {
                    arn: listener_arn,
                    key: step.key,
                    rules: Some(rules_now),
                },
            );
        }
        self.applied
            .locked()
            .listeners
            .insert(lb_arn.to_string(), (fingerprint, now));
        Ok(())
    }

    /// The load balancer's listeners by port, as ELBv2 has them (their
    /// rules not described yet).
    async fn describe_listeners(
        &self,
        lb_arn: &str,
    ) -> Result<BTreeMap<i32, ListenerState>, ElbError> {
        let r = self
            .elbv2
            .describe_listeners()
            .load_balancer_arn(lb_arn)
            .send()
            .await
            .map_err(api("DescribeListeners"))?;
        let mut out = BTreeMap::new();
        for l in r.listeners() {
            let (Some(arn), Some(port)) = (l.listener_arn(), l.port()) else {
                continue;
            };
            out.insert(
                port,
                ListenerState {
                    arn: arn.to_string(),
                    rules: None,
                    key: ListenerKey {
                        protocol: l
                            .protocol()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_default(),
                        certificates: l
                            .certificates()
                            .iter()
                            .filter_map(|c| c.certificate_arn().map(str::to_string))
                            .collect(),
                        ssl_policy: l.ssl_policy().map(str::to_string),
                        alpn: l.alpn_policy().first().cloned(),
                        default_action: l
                            .default_actions()
                            .first()
                            .and_then(convert::from_sdk_action),
                    },
                },
            );
        }
        Ok(out)
    }

    async fn listener_certificates(&self, listener: &str) -> Result<BTreeSet<String>, ElbError> {
        let r = self
            .elbv2
            .describe_listener_certificates()
            .listener_arn(listener)
            .send()
            .await
            .map_err(api("DescribeListenerCertificates"))?;
        Ok(r.certificates()
            .iter()
            .filter_map(|c| c.certificate_arn().map(str::to_string))
            .collect())
    }

    async fn sync_extra_certificates(
        &self,
        listener: &str,
        certs: &[String],
    ) -> Result<(), ElbError> {
        let have = self.listener_certificates(listener).await?;
        let plan = plan::extra_certificates(&have, certs);
        let sdk = |cs: &[String]| -> Vec<Certificate> {
            cs.iter()
                .map(|c| Certificate::builder().certificate_arn(c).build())
                .collect()
        };
        if !plan.add.is_empty() {
            self.elbv2
                .add_listener_certificates()
                .listener_arn(listener)
                .set_certificates(Some(sdk(&plan.add)))
                .send()
                .await
                .map_err(api("AddListenerCertificates"))?;
        }
        if !plan.remove.is_empty() {
            self.elbv2
                .remove_listener_certificates()
                .listener_arn(listener)
                .set_certificates(Some(sdk(&plan.remove)))
                .send()
                .await
                .map_err(api("RemoveListenerCertificates"))?;
        }
        Ok(())
    }

    /// Rules by priority: one that matches is kept, one at a wanted
    /// priority with other settings is modified in place (no window without
    /// a rule), new ones created, the rest deleted.
    async fn ensure_rules(
        &self,
        listener: &str,
        known: Option<Rules>,
        rules: &[WantedRule],
    ) -> Result<Rules, ElbError> {
        let actual = match known {
            Some(k) => k,
            None => self.describe_rules(listener).await?,
        };
        let mut now = BTreeMap::new();
        for step in plan::rules(&actual, rules) {
            let (rule, arn) = match step {
                RuleStep::Delete { arn } => {
                    self.elbv2
                        .delete_rule()
                        .rule_arn(&arn)
                        .send()
                        .await
                        .map_err(api("DeleteRule"))?;
                    continue;
                }
                RuleStep::Keep { rule, arn } => (rule, arn),
                RuleStep::Modify { rule, arn } => {
                    self.elbv2
                        .modify_rule()
                        .rule_arn(&arn)
                        .set_conditions(Some(sdk_conditions(rule)))
                        .actions(convert::to_sdk_action(&rule.action))
                        .send()
                        .await
                        .map_err(api("ModifyRule"))?;
                    (rule, arn)
                }
                RuleStep::Create { rule } => {
                    let r = self
                        .elbv2
                        .create_rule()
                        .listener_arn(listener)
                        .priority(rule.priority)
                        .set_conditions(Some(sdk_conditions(rule)))
                        .actions(convert::to_sdk_action(&rule.action))
                        .send()
                        .await
                        .map_err(api("CreateRule"))?;
                    let arn = r
                        .rules()
                        .first()
                        .and_then(|r| r.rule_arn())
                        .unwrap_or_default()
                        .to_string();
                    (rule, arn)
                }
            };
            now.insert(rule.priority, (arn, rule.key()));
        }
        Ok(now)
    }

    /// A listener's rules by priority as ELBv2 has them, the default one
    /// left out.
    async fn describe_rules(&self, listener: &str) -> Result<Rules, ElbError> {
        let mut actual = Rules::new();
        let mut marker = None;
        loop {
            let r = self
                .elbv2
                .describe_rules()
                .listener_arn(listener)
                .set_marker(marker)
                .send()
                .await
                .map_err(api("DescribeRules"))?;
            for rule in r.rules() {
                if rule.is_default() == Some(true) {
                    continue;
                }
                let (Some(arn), Some(p)) = (
                    rule.rule_arn(),
                    rule.priority().and_then(|p| p.parse::<i32>().ok()),
                ) else {
                    continue;
                };
                actual.insert(
                    p,
                    (
                        arn.to_string(),
                        RuleKey {
                            conditions: canonical_conditions(
                                rule.conditions()
                                    .iter()
                                    .filter_map(convert::from_sdk_condition)
                                    .collect(),
                            ),
                            action: rule.actions().first().and_then(convert::from_sdk_action),
                        },
                    ),
                );
            }
            marker = r.next_marker().map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        Ok(actual)
    }
}

fn sdk_conditions(rule: &WantedRule) -> Vec<RuleCondition> {
    rule.conditions
        .iter()
        .map(convert::to_sdk_condition)
        .collect()
}
