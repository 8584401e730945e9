//! Cluster Autoscaler's flag values that are small languages of their own.

/// A `--nodes=<min>:<max>:<name>` group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticGroup {
    pub min: i64,
    pub max: i64,
    pub name: String,
}

pub fn parse_nodes(s: &str) -> Result<StaticGroup, String> {
    let mut parts = s.splitn(3, ':');
    let (Some(min), Some(max), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("--nodes {s:?}: expected <min>:<max>:<name>"));
    };
    let min: i64 = min
        .parse()
        .map_err(|_| format!("--nodes {s:?}: min {min:?} is not a number"))?;
    let max: i64 = max
        .parse()
        .map_err(|_| format!("--nodes {s:?}: max {max:?} is not a number"))?;
    if min < 0 || max < min {
        return Err(format!("--nodes {s:?}: need 0 <= min <= max"));
    }
    if name.is_empty() {
        return Err(format!("--nodes {s:?}: the group's name is empty"));
    }
    Ok(StaticGroup {
        min,
        max,
        name: name.to_string(),
    })
}

/// `--node-group-auto-discovery=asg:tag=<key>[=<value>],<key>...`: the tag
/// keys a group must carry (values are ignored, as upstream's AWS provider
/// does).
pub fn parse_discovery(s: &str) -> Result<Vec<String>, String> {
    let spec = s
        .strip_prefix("asg:")
        .ok_or_else(|| format!("--node-group-auto-discovery {s:?}: only the asg discoverer is served (asg:tag=<key>,...)"))?;
    let tags = spec.strip_prefix("tag=").ok_or_else(|| {
        format!("--node-group-auto-discovery {s:?}: expected asg:tag=<key>[,<key>...]")
    })?;
    let keys: Vec<String> = tags
        .split(',')
        .map(|t| t.split('=').next().unwrap_or("").trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(format!("--node-group-auto-discovery {s:?}: no tag key"));
    }
    Ok(keys)
}

/// `<min>:<max>` (`--cores-total`, `--memory-total`).
pub fn parse_range(flag: &str, s: &str) -> Result<(i64, i64), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("--{flag} {s:?}: expected <min>:<max>"))?;
    let a: i64 = a
        .parse()
        .map_err(|_| format!("--{flag} {s:?}: {a:?} is not a number"))?;
    let b: i64 = b
        .parse()
        .map_err(|_| format!("--{flag} {s:?}: {b:?} is not a number"))?;
    if a < 0 || b < a {
        return Err(format!("--{flag} {s:?}: need 0 <= min <= max"));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_as_upstream_writes_them() {
        assert_eq!(
            parse_nodes("1:10:eks-ng-1-demo").unwrap(),
            StaticGroup {
                min: 1,
                max: 10,
                name: "eks-ng-1-demo".into()
            }
        );
        assert!(parse_nodes("10:1:x").is_err());
        assert!(parse_nodes("1:x").is_err());
        assert_eq!(
            parse_discovery(
                "asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/demo"
            )
            .unwrap(),
            [
                "k8s.io/cluster-autoscaler/enabled",
                "k8s.io/cluster-autoscaler/demo"
            ]
        );
        assert_eq!(parse_discovery("asg:tag=a=b").unwrap(), ["a"]);
        assert!(
            parse_discovery("mig:namePrefix=x")
                .unwrap_err()
                .contains("asg")
        );
        assert_eq!(parse_range("cores-total", "0:320000").unwrap(), (0, 320000));
        assert!(parse_range("memory-total", "5").is_err());
    }
}
