//! The Kubernetes protobuf encoding of the metrics types
//! (`application/vnd.kubernetes.protobuf`), which `kubectl top` asks for
//! first.
//!
//! A body is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` whose
//! `raw` field holds the encoded object. Field numbers follow the upstream
//! `generated.proto` files of k8s.io/metrics and k8s.io/apimachinery.

use std::collections::BTreeMap;

use prost::Message;

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\x00";

#[derive(Clone, PartialEq, Message)]
pub struct TypeMeta {
    #[prost(string, optional, tag = "1")]
    pub api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub kind: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Unknown {
    #[prost(message, optional, tag = "1")]
    pub type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub raw: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    pub content_encoding: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub content_type: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Time {
    #[prost(int64, optional, tag = "1")]
    pub seconds: Option<i64>,
    #[prost(int32, optional, tag = "2")]
    pub nanos: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Duration {
    #[prost(int64, optional, tag = "1")]
    pub duration: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Quantity {
    #[prost(string, optional, tag = "1")]
    pub string: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ObjectMeta {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub namespace: Option<String>,
    #[prost(message, optional, tag = "8")]
    pub creation_timestamp: Option<Time>,
    #[prost(btree_map = "string, string", tag = "11")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListMeta {
    #[prost(string, optional, tag = "2")]
    pub resource_version: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ContainerMetrics {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(btree_map = "string, message", tag = "2")]
    pub usage: BTreeMap<String, Quantity>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeMetrics {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    pub timestamp: Option<Time>,
    #[prost(message, optional, tag = "3")]
    pub window: Option<Duration>,
    #[prost(btree_map = "string, message", tag = "4")]
    pub usage: BTreeMap<String, Quantity>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeMetricsList {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ListMeta>,
    #[prost(message, repeated, tag = "2")]
    pub items: Vec<NodeMetrics>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PodMetrics {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    pub timestamp: Option<Time>,
    #[prost(message, optional, tag = "3")]
    pub window: Option<Duration>,
    #[prost(message, repeated, tag = "4")]
    pub containers: Vec<ContainerMetrics>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PodMetricsList {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ListMeta>,
    #[prost(message, repeated, tag = "2")]
    pub items: Vec<PodMetrics>,
}

/// Wraps an encoded object in the Kubernetes envelope.
pub fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let u = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_string()),
            kind: Some(kind.to_string()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = Vec::with_capacity(MAGIC.len() + u.encoded_len());
    out.extend_from_slice(MAGIC);
    u.encode(&mut out).unwrap_or_default();
    out
}

/// Splits an envelope into its type and raw object.
pub fn open(body: &[u8]) -> Option<(TypeMeta, Vec<u8>)> {
    let rest = body.strip_prefix(MAGIC)?;
    let u = Unknown::decode(rest).ok()?;
    Some((u.type_meta?, u.raw?))
}

pub fn time(nanos: i64) -> Time {
    Time {
        seconds: Some(nanos.div_euclid(1_000_000_000)),
        nanos: Some(0),
    }
}

pub fn quantities(kv: &[(&str, String)]) -> BTreeMap<String, Quantity> {
    kv.iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Quantity {
                    string: Some(v.clone()),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trip() {
        let list = NodeMetricsList {
            metadata: Some(ListMeta::default()),
            items: vec![NodeMetrics {
                metadata: Some(ObjectMeta {
                    name: Some("n1".into()),
                    namespace: None,
                    creation_timestamp: Some(time(5_000_000_000)),
                    labels: [("a".to_string(), "b".to_string())].into(),
                }),
                timestamp: Some(time(1_700_000_000_500_000_000)),
                window: Some(Duration {
                    duration: Some(15_000_000_000),
                }),
                usage: quantities(&[("cpu", "250m".into()), ("memory", "10Mi".into())]),
            }],
        };
        let body = envelope(
            "metrics.k8s.io/v1beta1",
            "NodeMetricsList",
            list.encode_to_vec(),
        );
        assert!(body.starts_with(b"k8s\x00"));
        let (tm, raw) = open(&body).unwrap();
        assert_eq!(tm.kind.as_deref(), Some("NodeMetricsList"));
        let back = NodeMetricsList::decode(raw.as_slice()).unwrap();
        assert_eq!(back, list);
        assert_eq!(
            back.items[0].timestamp.as_ref().unwrap().seconds,
            Some(1_700_000_000)
        );
    }

    #[test]
    fn wire_bytes_of_a_quantity_map_entry() {
        // ContainerMetrics{name: "c", usage: {"cpu": "1"}}:
        // field 1 (len) "c"; field 2 (len) map entry {1: "cpu", 2: Quantity{1: "1"}}
        let c = ContainerMetrics {
            name: Some("c".into()),
            usage: quantities(&[("cpu", "1".into())]),
        };
        assert_eq!(
            c.encode_to_vec(),
            vec![
                0x0a, 1, b'c', 0x12, 10, 0x0a, 3, b'c', b'p', b'u', 0x12, 3, 0x0a, 1, b'1'
            ]
        );
    }
}
