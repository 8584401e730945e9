//! Interruption messages: the EventBridge events an SQS queue receives for
//! a cluster's instances (Karpenter's AWS provider, `--interruption-queue`),
//! read into what to do with the instances they name.
//!
//! A message is keyed, as Karpenter keys its parsers, by `version`,
//! `source` and `detail-type`:
//!
//! | source, detail-type | kind | action |
//! |---|---|---|
//! | `aws.ec2`, EC2 Spot Instance Interruption Warning | `spot_interrupted` | cordon and drain |
//! | `aws.ec2`, EC2 Capacity Reservation Instance Interruption Warning | `capacity_reservation_interrupted` | cordon and drain |
//! | `aws.ec2`, EC2 Instance State-change Notification (`stopping`, `stopped`) | `instance_stopped` | cordon and drain |
//! | the same (`shutting-down`, `terminated`) | `instance_terminated` | cordon and drain |
//! | `aws.health`, AWS Health Event (service `EC2`, category `scheduledChange`) | `scheduled_change` | cordon and drain |
//! | `aws.ec2`, EC2 Instance Rebalance Recommendation | `rebalance_recommendation` | an Event only |
//!
//! Anything else (another state, service or category, an unknown
//! detail-type, an empty body) is `no_op`. A body that is not JSON, or
//! whose fields have the wrong types, is an error; either way the message
//! is deleted from the queue (Karpenter's rule: a message it cannot act on
//! never comes back).

use jiff::Timestamp;
use serde_json::Value;

/// What a message says happened (Karpenter's `messages.Kind`, the
/// `message_type` and `reason` label values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    RebalanceRecommendation,
    ScheduledChange,
    SpotInterrupted,
    InstanceStopped,
    InstanceTerminated,
    CapacityReservationInterrupted,
    NoOp,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RebalanceRecommendation => "rebalance_recommendation",
            Kind::ScheduledChange => "scheduled_change",
            Kind::SpotInterrupted => "spot_interrupted",
            Kind::InstanceStopped => "instance_stopped",
            Kind::InstanceTerminated => "instance_terminated",
            Kind::CapacityReservationInterrupted => "capacity_reservation_interrupted",
            Kind::NoOp => "no_op",
        }
    }

    /// What is done to the instance's NodeClaim.
    pub fn action(self) -> Action {
        match self {
            Kind::ScheduledChange
            | Kind::SpotInterrupted
            | Kind::InstanceStopped
            | Kind::InstanceTerminated
            | Kind::CapacityReservationInterrupted => Action::CordonAndDrain,
            Kind::RebalanceRecommendation | Kind::NoOp => Action::NoAction,
        }
    }

    /// The Event published on the NodeClaim and its Node (Karpenter's
    /// reasons and messages).
    pub fn notice(self) -> Option<Notice> {
        let (warning, reason, message) = match self {
            Kind::RebalanceRecommendation => (
                false,
                "SpotRebalanceRecommendation",
                "Spot rebalance recommendation was triggered",
            ),
            Kind::ScheduledChange => (
                true,
                "InstanceUnhealthy",
                "An unhealthy warning was triggered for the instance",
            ),
            Kind::SpotInterrupted => (
                true,
                "SpotInterrupted",
                "Spot interruption warning was triggered",
            ),
            Kind::CapacityReservationInterrupted => (
                true,
                "CapacityReservationInstanceInterrupted",
                "Capacity Reservation interruption warning was triggered",
            ),
            Kind::InstanceStopped => (true, "InstanceStopping", "Instance is stopping"),
            Kind::InstanceTerminated => (true, "InstanceTerminating", "Instance is terminating"),
            Kind::NoOp => return None,
        };
        Some(Notice {
            warning,
            reason,
            message,
        })
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the controller does with an instance a message names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Delete its NodeClaim: the node is tainted and drained, the
    /// provisioner launches capacity for its pods, the instance goes.
    CordonAndDrain,
    NoAction,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CordonAndDrain => "CordonAndDrain",
            Action::NoAction => "NoAction",
        }
    }
}

/// An Event's type, reason and message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notice {
    pub warning: bool,
    pub reason: &'static str,
    pub message: &'static str,
}

/// Published on a NodeClaim (and its Node) deleted for a message.
pub const TERMINATING: Notice = Notice {
    warning: true,
    reason: "TerminatingOnInterruption",
    message: "Interruption triggered termination for the NodeClaim",
};

/// A message read.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub kind: Kind,
    /// The EC2 instances it is about.
    pub instance_ids: Vec<String>,
    /// The event's `id`.
    pub id: String,
    /// When the event happened (`time`), for the queue-duration metric.
    pub time: Option<Timestamp>,
    pub source: String,
    pub detail_type: String,
    /// A state-change's state.
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unmarshalling the message as Metadata, {0}")]
    Metadata(String),
    #[error("parsing event message, {0}")]
    Detail(String),
}

const EC2: &str = "aws.ec2";
const HEALTH: &str = "aws.health";
const STATES: [&str; 4] = ["stopping", "stopped", "shutting-down", "terminated"];

fn string_field(v: &Value, key: &str) -> Result<String, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("{key}: a string was expected, not {other}")),
    }
}

/// Reads a queue message's body.
pub fn parse(body: &str) -> Result<Message, ParseError> {
    let mut msg = Message {
        kind: Kind::NoOp,
        instance_ids: vec![],
        id: String::new(),
        time: None,
        source: String::new(),
        detail_type: String::new(),
        state: None,
    };
    if body.is_empty() {
        return Ok(msg);
    }
    let v: Value = serde_json::from_str(body).map_err(|e| ParseError::Metadata(e.to_string()))?;
    if !v.is_object() {
        return Err(ParseError::Metadata(format!("not an object: {v}")));
    }
    let meta = |k: &str| string_field(&v, k).map_err(ParseError::Metadata);
    for k in ["account", "region"] {
        meta(k)?;
    }
    msg.id = meta("id")?;
    msg.source = meta("source")?;
    msg.detail_type = meta("detail-type")?;
    let version = meta("version")?;
    match v.get("resources") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
        Some(other) => {
            return Err(ParseError::Metadata(format!(
                "resources: a list of strings was expected, not {other}"
            )));
        }
    }
    let time = meta("time")?;
    if !time.is_empty() {
        msg.time = Some(
            time.parse::<Timestamp>()
                .map_err(|e| ParseError::Metadata(format!("time {time:?}: {e}")))?,
        );
    }
    if version != "0" {
        return Ok(msg);
    }
    let detail = match v.get("detail") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(d @ Value::Object(_)) => d.clone(),
        Some(other) => {
            return Err(ParseError::Detail(format!(
                "detail: an object was expected, not {other}"
            )));
        }
    };
    let field = |k: &str| string_field(&detail, k).map_err(ParseError::Detail);
    let kind = match (msg.source.as_str(), msg.detail_type.as_str()) {
        (EC2, "EC2 Spot Instance Interruption Warning") => {
            field("instance-action")?;
            msg.instance_ids = vec![field("instance-id")?];
            Kind::SpotInterrupted
        }
        (EC2, "EC2 Capacity Reservation Instance Interruption Warning") => {
            field("instance-action")?;
            msg.instance_ids = vec![field("instance-id")?];
            Kind::CapacityReservationInterrupted
        }
        (EC2, "EC2 Instance Rebalance Recommendation") => {
            msg.instance_ids = vec![field("instance-id")?];
            Kind::RebalanceRecommendation
        }
        (EC2, "EC2 Instance State-change Notification") => {
            let id = field("instance-id")?;
            let state = field("state")?.to_lowercase();
            if !STATES.contains(&state.as_str()) {
                return Ok(msg);
            }
            msg.instance_ids = vec![id];
            let kind = if state == "stopping" || state == "stopped" {
                Kind::InstanceStopped
            } else {
                Kind::InstanceTerminated
            };
            msg.state = Some(state);
            kind
        }
        (HEALTH, "AWS Health Event") => {
            let service = field("service")?;
            let category = field("eventTypeCategory")?;
            let entities = match detail.get("affectedEntities") {
                None | Some(Value::Null) => vec![],
                Some(Value::Array(a)) => a.clone(),
                Some(other) => {
                    return Err(ParseError::Detail(format!(
                        "affectedEntities: a list was expected, not {other}"
                    )));
                }
            };
            let mut ids = vec![];
            for e in &entities {
                ids.push(string_field(e, "entityValue").map_err(ParseError::Detail)?);
            }
            if service != "EC2" || category != "scheduledChange" {
                return Ok(msg);
            }
            msg.instance_ids = ids;
            Kind::ScheduledChange
        }
        _ => return Ok(msg),
    };
    msg.kind = kind;
    Ok(msg)
}

/// The EC2 instance ID in an AWS providerID (`aws:///<zone>/<id>`), as
/// Karpenter's `ParseInstanceID` reads it.
pub fn instance_id(provider_id: &str) -> Option<&str> {
    let rest = provider_id.strip_prefix("aws:///")?;
    let (_, id) = rest.rsplit_once('/')?;
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec2(detail_type: &str, detail: Value) -> String {
        serde_json::json!({
            "version": "0",
            "id": "7e4b1f2e-0000-4000-8000-000000000001",
            "detail-type": detail_type,
            "source": "aws.ec2",
            "account": "123456789012",
            "time": "2026-12-01T10:00:00Z",
            "region": "ap-southeast-1",
            "resources": ["arn:aws:ec2:ap-southeast-1:instance/i-0abc"],
            "detail": detail,
        })
        .to_string()
    }

    #[test]
    fn a_spot_warning_names_its_instance_and_drains() {
        let m = parse(&ec2(
            "EC2 Spot Instance Interruption Warning",
            serde_json::json!({"instance-id": "i-0abc", "instance-action": "terminate"}),
        ))
        .unwrap();
        assert_eq!(m.kind, Kind::SpotInterrupted);
        assert_eq!(m.instance_ids, vec!["i-0abc"]);
        assert_eq!(m.kind.action(), Action::CordonAndDrain);
        assert_eq!(m.time, Some("2026-12-01T10:00:00Z".parse().unwrap()));
        assert_eq!(m.kind.notice().unwrap().reason, "SpotInterrupted");
    }

    #[test]
    fn state_changes_are_stopped_or_terminated_and_others_are_no_ops() {
        for (state, kind) in [
            ("stopping", Kind::InstanceStopped),
            ("stopped", Kind::InstanceStopped),
            ("shutting-down", Kind::InstanceTerminated),
            ("terminated", Kind::InstanceTerminated),
            ("Terminated", Kind::InstanceTerminated),
            ("running", Kind::NoOp),
            ("pending", Kind::NoOp),
        ] {
            let m = parse(&ec2(
                "EC2 Instance State-change Notification",
                serde_json::json!({"instance-id": "i-0abc", "state": state}),
            ))
            .unwrap();
            assert_eq!(m.kind, kind, "{state}");
            assert_eq!(m.instance_ids.is_empty(), kind == Kind::NoOp, "{state}");
        }
    }

    #[test]
    fn health_events_act_only_for_ec2_scheduled_changes() {
        let health = |service: &str, category: &str| {
            serde_json::json!({
                "version": "0", "id": "x", "detail-type": "AWS Health Event",
                "source": "aws.health", "time": "2026-12-01T10:00:00Z",
                "detail": {"service": service, "eventTypeCategory": category,
                    "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
                    "affectedEntities": [{"entityValue": "i-1"}, {"entityValue": "i-2"}]}
            })
            .to_string()
        };
        let m = parse(&health("EC2", "scheduledChange")).unwrap();
        assert_eq!(m.kind, Kind::ScheduledChange);
        assert_eq!(m.instance_ids, vec!["i-1", "i-2"]);
        assert_eq!(
            parse(&health("RDS", "scheduledChange")).unwrap().kind,
            Kind::NoOp
        );
        assert_eq!(parse(&health("EC2", "issue")).unwrap().kind, Kind::NoOp);
    }

    #[test]
    fn a_rebalance_recommendation_is_an_event_only() {
        let m = parse(&ec2(
            "EC2 Instance Rebalance Recommendation",
            serde_json::json!({"instance-id": "i-0abc"}),
        ))
        .unwrap();
        assert_eq!(m.kind, Kind::RebalanceRecommendation);
        assert_eq!(m.kind.action(), Action::NoAction);
        let n = m.kind.notice().unwrap();
        assert!(!n.warning);
        assert_eq!(n.reason, "SpotRebalanceRecommendation");
    }

    #[test]
    fn unknown_or_empty_messages_are_no_ops_and_bad_ones_errors() {
        assert_eq!(parse("").unwrap().kind, Kind::NoOp);
        assert_eq!(
            parse(r#"{"field1":"value1","field2":"value2"}"#)
                .unwrap()
                .kind,
            Kind::NoOp
        );
        assert_eq!(
            parse(&ec2("EC2 AMI State Change", serde_json::json!({})))
                .unwrap()
                .kind,
            Kind::NoOp
        );
        // Another version of a known event.
        let v1 = ec2(
            "EC2 Spot Instance Interruption Warning",
            serde_json::json!({"instance-id": "i-0abc"}),
        )
        .replace(r#""version":"0""#, r#""version":"1""#);
        assert_eq!(parse(&v1).unwrap().kind, Kind::NoOp);
        assert!(matches!(parse("not json"), Err(ParseError::Metadata(_))));
        assert!(matches!(parse("[1,2]"), Err(ParseError::Metadata(_))));
        assert!(matches!(
            parse(r#"{"version": 0}"#),
            Err(ParseError::Metadata(_))
        ));
        assert!(matches!(
            parse(r#"{"time": "yesterday"}"#),
            Err(ParseError::Metadata(_))
        ));
        assert!(matches!(
            parse(&ec2(
                "EC2 Spot Instance Interruption Warning",
                serde_json::json!({"instance-id": 7})
            )),
            Err(ParseError::Detail(_))
        ));
    }

    #[test]
    fn instance_ids_come_from_aws_provider_ids_only() {
        assert_eq!(
            instance_id("aws:///ap-southeast-1a/i-0123456789abcdef0"),
            Some("i-0123456789abcdef0")
        );
        assert_eq!(instance_id("aws:///i-0abc"), None);
        assert_eq!(instance_id("kwok://node-1"), None);
        assert_eq!(instance_id("aws:///ap-southeast-1a/"), None);
    }

    proptest::proptest! {
        /// Whatever the body, parsing answers (a kind or an error).
        #[test]
        fn any_body_parses_or_errs(body in ".{0,200}") {
            let _ = parse(&body);
        }
    }
}
