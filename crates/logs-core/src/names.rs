//! The Container Insights log groups and the stream names Fluent Bit's
//! quickstart gives them (its `tail` inputs tag a file `<tag prefix>.` and
//! the path with `/` as `.`; `cloudwatch_logs` names the stream
//! `log_stream_prefix` + tag).

/// `/aws/containerinsights/<cluster>/<kind>`: `application`, `host`,
/// `dataplane`, `performance`.
pub fn log_group(cluster: &str, kind: &str) -> String {
    format!("/aws/containerinsights/{cluster}/{kind}")
}

/// The tag `tail` gives a file: `application.*` + `/var/log/containers/x.log`
/// is `application.var.log.containers.x.log`.
pub fn tail_tag(prefix: &str, path: &str) -> String {
    let path = path.trim_start_matches('/').replace('/', ".");
    format!("{prefix}.{path}")
}

/// A container log's stream: `<host>-application.var.log.containers.<file>`
/// (the application group) or `<host>-dataplane.tail.var.log.containers.<file>`
/// (aws-node and kube-proxy, the dataplane group).
pub fn container_stream(host: &str, dataplane: bool, file_name: &str) -> String {
    let prefix = if dataplane {
        "dataplane.tail"
    } else {
        "application"
    };
    format!(
        "{host}-{}",
        tail_tag(prefix, &format!("/var/log/containers/{file_name}"))
    )
}

/// A host log's stream: `<host>.host.messages` (`dmesg`, `messages`,
/// `secure`; the quickstart's host output uses `<host>.` as its prefix).
pub fn host_stream(host: &str, name: &str) -> String {
    format!("{host}.host.{name}")
}

/// Whether a container log goes to the dataplane group, as the quickstart
/// splits them (`aws-node*` and `kube-proxy*` files).
pub fn is_dataplane(file_name: &str) -> bool {
    file_name.starts_with("aws-node") || file_name.starts_with("kube-proxy")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quickstart_names() {
        assert_eq!(
            log_group("demo", "application"),
            "/aws/containerinsights/demo/application"
        );
        let f = "web-1_default_nginx-0123.log";
        assert_eq!(
            container_stream("ip-10-0-1-1.ec2.internal", false, f),
            "ip-10-0-1-1.ec2.internal-application.var.log.containers.web-1_default_nginx-0123.log"
        );
        assert_eq!(
            container_stream("n1", true, "aws-node-x_kube-system_aws-node-1.log"),
            "n1-dataplane.tail.var.log.containers.aws-node-x_kube-system_aws-node-1.log"
        );
        assert_eq!(host_stream("n1", "messages"), "n1.host.messages");
        assert!(is_dataplane("kube-proxy-abc_kube-system_kube-proxy-1.log"));
        assert!(!is_dataplane("web_default_web-1.log"));
    }
}
