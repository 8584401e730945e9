//! Names of load balancers, target groups and security groups, formed as
//! the AWS Load Balancer Controller forms them so that a stack it made is
//! found again under the same names: `k8s-<namespace>-<name>-<hash>`, the
//! namespace and name with everything but ASCII letters and digits removed
//! and cut to 8 characters, the hash the first 10 hex digits of a SHA-256
//! over the inputs that identify the resource. At most 32 characters, as
//! ELBv2 requires.

use sha2::{Digest, Sha256};

use crate::model::{Protocol, Scheme, StackId, TargetType};

/// ELBv2's limit on load balancer and target group names.
pub const MAX_NAME_LEN: usize = 32;

/// `s` without anything but ASCII letters and digits.
pub fn sanitize(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// The first `n` characters.
fn cut(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The first 10 hex digits of SHA-256 over the parts, concatenated.
pub fn hash10(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let mut out = String::with_capacity(10);
    for b in digest.iter().take(5) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// `k8s-<ns:8>-<name:8>-<hash>`.
pub fn namespaced(namespace: &str, name: &str, hash: &str) -> String {
    format!(
        "k8s-{}-{}-{}",
        cut(&sanitize(namespace), 8),
        cut(&sanitize(name), 8),
        cut(hash, 10)
    )
}

/// Whether a name given by the user (the `name` / `load-balancer-name`
/// annotations) is one ELBv2 takes: 1 to 32 letters, digits and hyphens,
/// not starting or ending with a hyphen, not starting with `internal-`.
pub fn is_valid_lb_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.starts_with("internal-")
}

/// A Service's NLB: over cluster, Service UID and scheme.
pub fn service_load_balancer(
    cluster: &str,
    namespace: &str,
    name: &str,
    uid: &str,
    scheme: Scheme,
) -> String {
    namespaced(namespace, name, &hash10(&[cluster, uid, scheme.as_str()]))
}

/// A Service's managed security group: over cluster, name, namespace and
/// UID.
pub fn service_security_group(cluster: &str, namespace: &str, name: &str, uid: &str) -> String {
    namespaced(namespace, name, &hash10(&[cluster, name, namespace, uid]))
}

/// What a Service's target group name is hashed over: everything ELBv2
/// cannot change in place.
#[derive(Clone, Copy, Debug)]
pub struct ServiceTargetGroupKey<'a> {
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    /// The target group's port (NodePort or target port).
    pub target_group_port: i32,
    /// The Service port (number).
    pub service_port: i32,
    pub target_type: TargetType,
    pub protocol: Protocol,
    pub health_check_protocol: Protocol,
    pub health_check_interval: i32,
}

/// A Service's target group.
pub fn service_target_group(k: &ServiceTargetGroupKey<'_>) -> String {
    let hash = hash10(&[
        k.cluster,
        k.uid,
        &k.target_group_port.to_string(),
        &k.service_port.to_string(),
        k.target_type.as_str(),
        k.protocol.as_str(),
        k.health_check_protocol.as_str(),
        &k.health_check_interval.to_string(),
    ]);
    namespaced(k.namespace, k.name, &hash)
}

/// `k8s-<group:17>-<hash>` for an explicit group, else
/// `k8s-<ns:8>-<name:8>-<hash>`.
fn for_group(group: &StackId, hash: &str) -> String {
    match group {
        StackId::IngressGroup { name } => {
            format!("k8s-{}-{}", cut(&sanitize(name), 17), cut(hash, 10))
        }
        StackId::Ingress { namespace, name } | StackId::Service { namespace, name } => {
            namespaced(namespace, name, hash)
        }
    }
}

/// An IngressGroup's ALB: over cluster, group id (`ns/name` for an
/// Ingress without a group) and scheme.
pub fn ingress_load_balancer(cluster: &str, group: &StackId, scheme: Scheme) -> String {
    for_group(
        group,
        &hash10(&[cluster, &group.tag_value(), scheme.as_str()]),
    )
}

/// An IngressGroup's managed security group: over cluster and group id.
pub fn ingress_security_group(cluster: &str, group: &StackId) -> String {
    for_group(group, &hash10(&[cluster, &group.tag_value()]))
}

/// What an Ingress backend's target group name is hashed over.
#[derive(Clone, Copy, Debug)]
pub struct IngressTargetGroupKey<'a> {
    pub cluster: &'a str,
    pub group: &'a StackId,
    pub ingress_namespace: &'a str,
    pub ingress_name: &'a str,
    pub service_name: &'a str,
    pub service_uid: &'a str,
    /// The backend's port as the Ingress gives it (number or name).
    pub service_port: &'a str,
    pub target_group_port: i32,
    pub target_type: TargetType,
    pub protocol: Protocol,
    /// `HTTP1`, `HTTP2` or `GRPC`.
    pub protocol_version: &'a str,
}

/// An Ingress backend's target group: `k8s-<svc ns:8>-<svc:8>-<hash>`.
pub fn ingress_target_group(k: &IngressTargetGroupKey<'_>) -> String {
    let hash = hash10(&[
        k.cluster,
        &k.group.tag_value(),
        k.ingress_namespace,
        k.ingress_name,
        k.service_uid,
        k.service_port,
        &k.target_group_port.to_string(),
        k.target_type.as_str(),
        k.protocol.as_str(),
        k.protocol_version,
    ]);
    namespaced(k.ingress_namespace, k.service_name, &hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_sanitized_and_short() {
        let n = namespaced("game-2048", "ingress-2048", &hash10(&["x"]));
        assert!(n.starts_with("k8s-game2048-ingress2-"), "{n}");
        assert_eq!(n.len(), 32);
        let g = ingress_load_balancer(
            "demo",
            &StackId::IngressGroup {
                name: "a.very-long-group-name-indeed".into(),
            },
            Scheme::Internal,
        );
        assert!(g.starts_with("k8s-averylonggroupnam-"), "{g}");
        assert_eq!(g.len(), 32);
        assert_eq!(namespaced("a", "b", "0123456789"), "k8s-a-b-0123456789");
    }

    #[test]
    fn hash_is_sha256_prefix() {
        // sha256("") = e3b0c44298fc1c149afbf4c8996fb924...
        assert_eq!(hash10(&[]), "e3b0c44298");
        assert_eq!(hash10(&["ab", "c"]), hash10(&["abc"]));
    }

    #[test]
    fn user_names() {
        assert!(is_valid_lb_name("my-nlb-1"));
        for bad in ["", "-a", "a-", "a_b", "internal-x", &"a".repeat(33)] {
            assert!(!is_valid_lb_name(bad), "{bad}");
        }
    }
}
