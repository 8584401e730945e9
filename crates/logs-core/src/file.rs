//! The kubelet's name for a container's log file:
//! `/var/log/containers/<pod>_<namespace>_<container>-<container id>.log`
//! (a symlink into `/var/log/pods/`).

/// What a container log file's name says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerFile {
    pub pod: String,
    pub namespace: String,
    pub container: String,
    /// The runtime's container ID (64 hex digits).
    pub container_id: String,
}

impl ContainerFile {
    /// Reads a path or file name; `None` if it is not named that way.
    pub fn parse(path: &str) -> Option<ContainerFile> {
        let name = path.rsplit('/').next()?.strip_suffix(".log")?;
        // Pod and namespace names cannot hold `_` (DNS names); the container
        // name cannot either, but may hold `-`, so the ID is after the last.
        let (pod, rest) = name.split_once('_')?;
        let (namespace, rest) = rest.split_once('_')?;
        let (container, id) = rest.rsplit_once('-')?;
        let valid = !pod.is_empty()
            && !namespace.is_empty()
            && !container.is_empty()
            && !container.contains('_')
            && id.len() == 64
            && id.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| ContainerFile {
            pod: pod.to_string(),
            namespace: namespace.to_string(),
            container: container.to_string(),
            container_id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_kubelets_names_are_read() {
        let f = ContainerFile::parse(&format!(
            "/var/log/containers/nginx-to-scaleout-6fcd49fb84-2xkqm_default_nginx-to-scaleout-{ID}.log"
        ))
        .expect("a container log file");
        assert_eq!(f.pod, "nginx-to-scaleout-6fcd49fb84-2xkqm");
        assert_eq!(f.namespace, "default");
        assert_eq!(f.container, "nginx-to-scaleout");
        assert_eq!(f.container_id, ID);
    }

    #[test]
    fn other_names_are_not() {
        for bad in [
            "/var/log/messages".to_string(),
            format!("pod_ns_c-{ID}.txt"),
            format!("pod_ns-{ID}.log"),
            "pod_ns_c-abc.log".to_string(),
            format!("_ns_c-{ID}.log"),
            format!("pod_ns_a_b-{ID}.log"),
        ] {
            assert_eq!(ContainerFile::parse(&bad), None, "{bad}");
        }
    }
}
