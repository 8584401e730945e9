//! Cluster Autoscaler's flag values that are small languages of their own.

use std::collections::BTreeMap;

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

/// `--node-group-auto-discovery=asg:tag=<key>[=<value>],<key>...`: the tags
/// a group must carry, key -> value (`""`: any value), as upstream's AWS
/// provider reads them (a group matches when it has every key, with the
/// value where one is given).
pub fn parse_discovery(s: &str) -> Result<BTreeMap<String, String>, String> {
    let (discoverer, spec) = s.split_once(':').ok_or_else(|| {
        format!("--node-group-auto-discovery {s:?}: expected asg:tag=<key>[=<value>][,<key>...]")
    })?;
    if discoverer != "asg" {
        return Err(format!(
            "--node-group-auto-discovery {s:?}: unsupported discoverer {discoverer:?}, only asg is served (asg:tag=<key>,...)"
        ));
    }
    let (param, tags) = spec.split_once('=').ok_or_else(|| {
        format!("--node-group-auto-discovery {s:?}: expected asg:tag=<key>[=<value>][,<key>...]")
    })?;
    if param != "tag" {
        return Err(format!(
            "--node-group-auto-discovery {s:?}: unsupported parameter {param:?}, the only one is tag"
        ));
    }
    let tags: BTreeMap<String, String> = tags
        .split(',')
        .map(|t| {
            let (k, v) = t.split_once('=').unwrap_or((t, ""));
            (k.trim().to_string(), v.trim().to_string())
        })
        .filter(|(k, _)| !k.is_empty())
        .collect();
    if tags.is_empty() {
        return Err(format!(
            "--node-group-auto-discovery {s:?}: no tag key (asg:tag=<key>,...)"
        ));
    }
    Ok(tags)
}

/// Whether a group's tags match a discovery spec: every key, with its
/// value where the spec gives one.
pub fn discovery_matches(spec: &BTreeMap<String, String>, tags: &BTreeMap<String, String>) -> bool {
    spec.iter()
        .all(|(k, v)| tags.get(k).is_some_and(|t| v.is_empty() || t == v))
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
            BTreeMap::from([
                ("k8s.io/cluster-autoscaler/enabled".into(), String::new()),
                ("k8s.io/cluster-autoscaler/demo".into(), String::new())
            ])
        );
        assert_eq!(
            parse_discovery("asg:tag=a=b").unwrap(),
            BTreeMap::from([("a".into(), "b".into())])
        );
        assert!(
            parse_discovery("mig:namePrefix=x")
                .unwrap_err()
                .contains("asg")
        );
        assert_eq!(parse_range("cores-total", "0:320000").unwrap(), (0, 320000));
        assert!(parse_range("memory-total", "5").is_err());
    }
}
