//! Rule translation: a member's paths (Exact, Prefix,
//! ImplementationSpecific) and hosts into listener rules, with the extra
//! conditions of `conditions.<service>`, and upstream's rule optimizer.

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::HTTPIngressPath;

use super::actions::ConditionCfg;
use super::stack::Builder;
use crate::ModelError;
use crate::model::{Action, Condition, Protocol};

/// A rule before priorities.
pub(super) struct DraftRule {
    pub(super) conditions: Vec<Condition>,
    pub(super) action: Action,
}

impl Builder<'_> {
    /// A member's rules: per Ingress rule, its paths sorted (Exact, then
    /// Prefix longest first, then the rest as written).
    pub(super) fn member_rules(&mut self, i: usize, out: &mut Vec<DraftRule>) {
        let Some(spec) = self.member(i).ingress.spec.clone() else {
            return;
        };
        for (r, rule) in spec.rules.iter().flatten().enumerate() {
            let Some(http) = &rule.http else {
                continue;
            };
            let sorted = match sort_paths(&http.paths) {
                Ok(p) => p,
                Err(msg) => {
                    self.fail(
                        i,
                        ModelError::spec(format!("spec.rules[{r}].http.paths"), msg),
                    );
                    continue;
                }
            };
            for (p, path) in sorted {
                let field = format!("spec.rules[{r}].http.paths[{p}]");
                let built = self
                    .backend(i, &path.backend, &format!("{field}.backend"))
                    .and_then(|(action, extra)| {
                        let conditions = rule_conditions(rule.host.as_deref(), path, extra)
                            .map_err(|msg| ModelError::spec(format!("{field}.path"), msg))?;
                        Ok(DraftRule { conditions, action })
                    });
                if let Some(d) = self.ok(i, built) {
                    out.push(d);
                }
            }
        }
    }
}

/// Paths in upstream's order: Exact, then Prefix (longest first, ties as
/// written), then ImplementationSpecific or unset (as written); with
/// their index as written.
fn sort_paths(paths: &[HTTPIngressPath]) -> Result<Vec<(usize, &HTTPIngressPath)>, String> {
    let mut exact = vec![];
    let mut prefix = vec![];
    let mut other = vec![];
    for (i, p) in paths.iter().enumerate() {
        match p.path_type.as_str() {
            "Exact" => exact.push((i, p)),
            "Prefix" => prefix.push((i, p)),
            "ImplementationSpecific" | "" => other.push((i, p)),
            t => {
                return Err(format!(
                    "unknown pathType {t} for path {}",
                    p.path.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    prefix.sort_by_key(|(_, p)| std::cmp::Reverse(p.path.as_deref().map_or(0, str::len)));
    exact.extend(prefix);
    exact.extend(other);
    Ok(exact)
}

/// ELBv2 path patterns of an Ingress path.
pub fn path_patterns(path: &str, path_type: &str) -> Result<Vec<String>, String> {
    match path_type {
        "Exact" => {
            if path.contains(['*', '?']) {
                return Err(format!("exact path shouldn't contain wildcards: {path}"));
            }
            Ok(vec![path.to_string()])
        }
        "Prefix" => {
            if path == "/" {
                return Ok(vec!["/*".to_string()]);
            }
            if path.contains(['*', '?']) {
                return Err(format!("prefix path shouldn't contain wildcards: {path}"));
            }
            let p = path.strip_suffix('/').unwrap_or(path);
            Ok(vec![p.to_string(), format!("{p}/*")])
        }
        _ => Ok(vec![path.to_string()]),
    }
}

/// A rule's conditions: the annotation's extra ones (header, method,
/// query, source IP) first, then host-header (the rule's host and extra
/// hosts), then path-pattern (the path's patterns and extra paths);
/// `/*` when there is nothing else.
fn rule_conditions(
    host: Option<&str>,
    path: &HTTPIngressPath,
    extra: Vec<ConditionCfg>,
) -> Result<Vec<Condition>, String> {
    let mut hosts: Vec<String> = host
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .into_iter()
        .collect();
    let mut paths = match path.path.as_deref() {
        Some(p) if !p.is_empty() => path_patterns(p, &path.path_type)?,
        _ => vec![],
    };
    let mut out = vec![];
    for c in extra {
        match c.field.as_str() {
            "host-header" => hosts.extend(c.host_header_config.unwrap_or_default().values),
            "path-pattern" => paths.extend(c.path_pattern_config.unwrap_or_default().values),
            "http-header" => {
                let h = c.http_header_config.unwrap_or_default();
                out.push(Condition::HttpHeader {
                    name: h.http_header_name,
                    values: h.values,
                });
            }
            "http-request-method" => out.push(Condition::HttpRequestMethod(
                c.http_request_method_config.unwrap_or_default().values,
            )),
            "query-string" => out.push(Condition::QueryString(
                c.query_string_config
                    .unwrap_or_default()
                    .values
                    .into_iter()
                    .map(|kv| (kv.key, kv.value))
                    .collect(),
            )),
            "source-ip" => out.push(Condition::SourceIp(
                c.source_ip_config.unwrap_or_default().values,
            )),
            _ => {}
        }
    }
    if !hosts.is_empty() {
        out.push(Condition::HostHeader(hosts));
    }
    if !paths.is_empty() {
        out.push(Condition::PathPattern(paths));
    }
    if out.is_empty() {
        out.push(Condition::PathPattern(vec!["/*".to_string()]));
    }
    Ok(out)
}

/// Upstream's rule optimizer: drop redirect rules that would redirect to
/// themselves, and rules shadowed by an earlier redirect rule whose
/// conditions cover theirs.
pub(super) fn optimize(port: i32, protocol: Protocol, rules: Vec<DraftRule>) -> Vec<DraftRule> {
    let rules: Vec<DraftRule> = rules
        .into_iter()
        .filter(|r| !is_redirect_loop(port, protocol, r))
        .collect();
    let mut out: Vec<DraftRule> = vec![];
    for r in rules {
        let shadowed = out.iter().any(|e| {
            matches!(e.action, Action::Redirect { .. }) && covers(&e.conditions, &r.conditions)
        });
        if !shadowed {
            out.push(r);
        }
    }
    out
}

fn hosts_and_paths(conditions: &[Condition]) -> (BTreeSet<&str>, BTreeSet<&str>, bool) {
    let mut hosts = BTreeSet::new();
    let mut paths = BTreeSet::new();
    let mut other = false;
    for c in conditions {
        match c {
            Condition::HostHeader(v) => hosts.extend(v.iter().map(String::as_str)),
            Condition::PathPattern(v) => paths.extend(v.iter().map(String::as_str)),
            _ => other = true,
        }
    }
    (hosts, paths, other)
}

fn is_redirect_loop(port: i32, protocol: Protocol, rule: &DraftRule) -> bool {
    let Action::Redirect {
        protocol: r_proto,
        port: r_port,
        host,
        path,
        query,
        ..
    } = &rule.action
    else {
        return false;
    };
    let (hosts, paths, _) = hosts_and_paths(&rule.conditions);
    let same = |v: &Option<String>, keep: &str, ok: &dyn Fn(&str) -> bool| {
        v.as_deref().is_none_or(|x| x == keep || ok(x))
    };
    same(host, "#{host}", &|h| hosts.contains(h))
        && same(path, "/#{path}", &|p| paths.contains(p))
        && same(r_port, "#{port}", &|p| p == port.to_string())
        && same(r_proto, "#{protocol}", &|p| p == protocol.as_str())
        && same(query, "#{query}", &|_| false)
}

/// Whether conditions `lhs` match everything `rhs` matches (host and path
/// conditions only).
fn covers(lhs: &[Condition], rhs: &[Condition]) -> bool {
    let (lh, lp, other) = hosts_and_paths(lhs);
    if other {
        return false;
    }
    let (rh, rp, _) = hosts_and_paths(rhs);
    let hosts = lh.is_empty() || (!rh.is_empty() && lh.is_superset(&rh));
    let paths = lp.is_empty() || lp.contains("/*") || (!rp.is_empty() && lp.is_superset(&rp));
    hosts && paths
}
