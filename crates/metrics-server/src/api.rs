//! The `metrics.k8s.io/v1beta1` API: discovery, NodeMetrics and PodMetrics
//! (get, list with label and field selectors), JSON and Table output,
//! metav1.Status errors, and the OpenAPI documents the aggregator fetches.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
};

use axum::{
    Extension, Router,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{api::PartialObjectMeta, runtime::reflector};
use serde_json::{Value, json};

use crate::{
    auth::{Attributes, Authenticator, Authorizer, PeerCerts},
    quantity::{cpu_from_nanocores, go_duration, memory_from_bytes},
    selector::{FieldSelector, LabelSelector},
    store::{Nanos, Store, Usage},
};

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
const GV: &str = "metrics.k8s.io/v1beta1";

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<RwLock<Store>>,
    pub nodes: reflector::Store<Node>,
    pub pods: reflector::Store<PartialObjectMeta<Pod>>,
    pub authn: Arc<Authenticator>,
    pub authz: Arc<Authorizer>,
    pub always_allow: Arc<Vec<String>>,
    pub health: Arc<crate::Health>,
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Maps a request to its authorization attributes.
pub fn attributes(path: &str, query: Option<&str>) -> Attributes {
    let watch = query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    let rest = path.strip_prefix("/apis/metrics.k8s.io/v1beta1/");
    let parts: Vec<&str> = rest
        .map(|r| r.split('/').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let res = |resource: &str, namespace: Option<&str>, name: Option<&str>| {
        let verb = if watch {
            "watch"
        } else if name.is_some() {
            "get"
        } else {
            "list"
        };
        Attributes::Resource {
            verb: verb.to_string(),
            resource: resource.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
        }
    };
    match parts.as_slice() {
        ["nodes"] => res("nodes", None, None),
        ["nodes", n] => res("nodes", None, Some(n)),
        ["pods"] => res("pods", None, None),
        ["namespaces", ns, "pods"] => res("pods", Some(ns), None),
        ["namespaces", ns, "pods", n] => res("pods", Some(ns), Some(n)),
        _ => Attributes::NonResource {
            verb: "get".to_string(),
            path: path.to_string(),
        },
    }
}

async fn auth(
    State(st): State<ApiState>,
    peer: Option<Extension<PeerCerts>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_string();
    if st.always_allow.iter().any(|p| p == &path) {
        return next.run(req).await;
    }
    let peer = peer.map(|Extension(p)| p).unwrap_or_default();
    let Some(id) = st.authn.authenticate(&peer, req.headers()).await else {
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".to_string(),
        );
    };
    let attrs = attributes(&path, req.uri().query());
    let (ok, reason) = st.authz.authorize(&id, &attrs).await;
    if !ok {
        let msg = match &attrs {
            Attributes::Resource {
                verb,
                resource,
                namespace,
                name,
            } => {
                let scope = match namespace {
                    Some(ns) => format!("in the namespace \"{ns}\""),
                    None => "at the cluster scope".to_string(),
                };
                format!(
                    "{resource}.{GROUP} {}is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{GROUP}\" {scope}{}",
                    name.as_ref()
                        .map(|n| format!("\"{n}\" "))
                        .unwrap_or_default(),
                    id.user,
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {reason}")
                    }
                )
            }
            Attributes::NonResource { verb, path } => {
                format!(
                    "forbidden: User \"{}\" cannot {verb} path \"{path}\"",
                    id.user
                )
            }
        };
        return status(StatusCode::FORBIDDEN, "Forbidden", msg);
    }
    next.run(req).await
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    label_selector: Option<String>,
    field_selector: Option<String>,
    watch: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Json,
    Table,
}

/// Picks the response format from the Accept header; `Err` is a 406.
fn negotiate(headers: &HeaderMap) -> Result<Format, String> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let mut json_ok = false;
    for part in accept.split(',') {
        let mut it = part.split(';').map(str::trim);
        let mime = it.next().unwrap_or_default();
        let params: Vec<&str> = it.collect();
        if mime == "application/json" || mime == "*/*" || mime == "application/*" {
            if params.iter().any(|p| p.replace(' ', "") == "as=Table") {
                return Ok(Format::Table);
            }
            if !params.iter().any(|p| p.starts_with("as=")) {
                json_ok = true;
            }
        }
    }
    if json_ok {
        Ok(Format::Json)
    } else {
        Err(format!(
            "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io (asked for {accept})"
        ))
    }
}

fn rfc3339(nanos: Nanos) -> String {
    jiff::Timestamp::from_nanosecond(nanos as i128)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn usage_json(u: &Usage) -> Value {
    json!({"cpu": cpu_from_nanocores(u.cpu_nanocores), "memory": memory_from_bytes(u.memory_bytes)})
}

fn node_metrics(name: &str, labels: &BTreeMap<String, String>, u: &Usage) -> Value {
    json!({
        "kind": "NodeMetrics",
        "apiVersion": GV,
        "metadata": {"name": name, "creationTimestamp": now_rfc3339(), "labels": labels},
        "timestamp": rfc3339(u.timestamp),
        "window": go_duration(u.window),
        "usage": usage_json(u),
    })
}

fn pod_metrics(
    ns: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    u: &crate::store::PodUsage,
) -> Value {
    json!({
        "kind": "PodMetrics",
        "apiVersion": GV,
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": now_rfc3339(), "labels": labels},
        "timestamp": rfc3339(u.timestamp),
        "window": go_duration(u.window),
        "containers": u.containers.iter().map(|(c, cu)| json!({"name": c, "usage": usage_json(cu)})).collect::<Vec<_>>(),
    })
}

fn respond(fmt: Format, kind: &str, items: Vec<Value>) -> Response {
    let body = match fmt {
        Format::Json => json!({
            "kind": format!("{kind}List"),
            "apiVersion": GV,
            "metadata": {},
            "items": items,
        }),
        Format::Table => table(&items),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn respond_one(fmt: Format, kind: &str, item: Value) -> Response {
    match fmt {
        Format::Json => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            item.to_string(),
        )
            .into_response(),
        Format::Table => respond(fmt, kind, vec![item]),
    }
}

/// A meta.k8s.io/v1 Table like upstream's: Name, CPU, Memory, Window.
fn table(items: &[Value]) -> Value {
    let sum = |item: &Value, res: &str| -> u64 {
        let parse_cpu = |s: &str| -> u64 {
            let (n, m) = match s.chars().last() {
                Some('n') => (&s[..s.len() - 1], 1),
                Some('u') => (&s[..s.len() - 1], 1_000),
                Some('m') => (&s[..s.len() - 1], 1_000_000),
                _ => (s, 1_000_000_000),
            };
            n.parse::<u64>().unwrap_or(0) * m
        };
        let parse_mem = |s: &str| -> u64 {
            for (suf, mul) in [
                ("Pi", 1u64 << 50),
                ("Ti", 1 << 40),
                ("Gi", 1 << 30),
                ("Mi", 1 << 20),
                ("Ki", 1 << 10),
            ] {
                if let Some(n) = s.strip_suffix(suf) {
                    return n.parse::<u64>().unwrap_or(0) * mul;
                }
            }
            s.parse().unwrap_or(0)
        };
        let usages: Vec<&Value> = match item.get("containers").and_then(Value::as_array) {
            Some(cs) => cs.iter().filter_map(|c| c.get("usage")).collect(),
            None => item.get("usage").into_iter().collect(),
        };
        usages
            .iter()
            .map(|u| u.get(res).and_then(Value::as_str).unwrap_or("0"))
            .map(|s| {
                if res == "cpu" {
                    parse_cpu(s)
                } else {
                    parse_mem(s)
                }
            })
            .sum()
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let meta = item.get("metadata").cloned().unwrap_or(Value::Null);
            json!({
                "cells": [
                    meta.get("name").cloned().unwrap_or(Value::Null),
                    cpu_from_nanocores(sum(item, "cpu")),
                    memory_from_bytes(sum(item, "memory")),
                    item.get("window").cloned().unwrap_or(Value::Null),
                ],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
            })
        })
        .collect();
    let col = |name: &str, ty: &str, format: &str, desc: &str| json!({"name": name, "type": ty, "format": format, "description": desc, "priority": 0});
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [
            col("Name", "string", "name", "Name must be unique within a namespace."),
            col("CPU", "string", "", "CPU consumption"),
            col("Memory", "string", "", "Memory consumption"),
            col("Window", "string", "", "Interval over which the usage was measured"),
        ],
        "rows": rows,
    })
}

fn selectors(q: &ListQuery) -> Result<(LabelSelector, FieldSelector), Box<Response>> {
    if q.watch.as_deref().is_some_and(|w| w == "true" || w == "1") {
        return Err(Box::new(status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "watch is not supported on metrics.k8s.io".to_string(),
        )));
    }
    let l = LabelSelector::parse(q.label_selector.as_deref().unwrap_or(""))
        .map_err(|e| Box::new(status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string())))?;
    let f = FieldSelector::parse(q.field_selector.as_deref().unwrap_or(""))
        .map_err(|e| Box::new(status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string())))?;
    Ok((l, f))
}

fn read_store(st: &ApiState) -> std::sync::RwLockReadGuard<'_, Store> {
    st.store.read().unwrap_or_else(|e| e.into_inner())
}

async fn list_nodes(
    State(st): State<ApiState>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let fmt = match negotiate(&headers) {
        Ok(f) => f,
        Err(m) => return status(StatusCode::NOT_ACCEPTABLE, "NotAcceptable", m),
    };
    let (ls, fs) = match selectors(&q) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let store = read_store(&st);
    let mut items: Vec<(String, Value)> = st
        .nodes
        .state()
        .iter()
        .filter_map(|n| {
            let name = n.metadata.name.as_deref()?;
            let labels = n.metadata.labels.clone().unwrap_or_default();
            if !ls.matches(&labels) || !fs.matches(name, "") {
                return None;
            }
            let u = store.node(name)?;
            Some((name.to_string(), node_metrics(name, &labels, &u)))
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    respond(
        fmt,
        "NodeMetrics",
        items.into_iter().map(|(_, v)| v).collect(),
    )
}

async fn get_node(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let fmt = match negotiate(&headers) {
        Ok(f) => f,
        Err(m) => return status(StatusCode::NOT_ACCEPTABLE, "NotAcceptable", m),
    };
    let node = st.nodes.get(&reflector::ObjectRef::new(&name));
    let usage = read_store(&st).node(&name);
    match (node, usage) {
        (Some(n), Some(u)) => respond_one(
            fmt,
            "NodeMetrics",
            node_metrics(&name, &n.metadata.labels.clone().unwrap_or_default(), &u),
        ),
        _ => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("nodemetrics.{GROUP} \"{name}\" not found"),
        ),
    }
}

fn pods_in(st: &ApiState, namespace: Option<&str>, q: &ListQuery, fmt: Format) -> Response {
    let (ls, fs) = match selectors(q) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let store = read_store(st);
    let mut items: Vec<((String, String), Value)> = st
        .pods
        .state()
        .iter()
        .filter_map(|p| {
            let name = p.metadata.name.as_deref()?;
            let ns = p.metadata.namespace.as_deref()?;
            if namespace.is_some_and(|want| want != ns) {
                return None;
            }
            let labels = p.metadata.labels.clone().unwrap_or_default();
            if !ls.matches(&labels) || !fs.matches(name, ns) {
                return None;
            }
            let u = store.pod(ns, name)?;
            Some((
                (ns.to_string(), name.to_string()),
                pod_metrics(ns, name, &labels, &u),
            ))
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    respond(
        fmt,
        "PodMetrics",
        items.into_iter().map(|(_, v)| v).collect(),
    )
}

async fn list_all_pods(
    State(st): State<ApiState>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    match negotiate(&headers) {
        Ok(fmt) => pods_in(&st, None, &q, fmt),
        Err(m) => status(StatusCode::NOT_ACCEPTABLE, "NotAcceptable", m),
    }
}

async fn list_pods(
    State(st): State<ApiState>,
    Path(ns): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    match negotiate(&headers) {
        Ok(fmt) => pods_in(&st, Some(&ns), &q, fmt),
        Err(m) => status(StatusCode::NOT_ACCEPTABLE, "NotAcceptable", m),
    }
}

async fn get_pod(
    State(st): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let fmt = match negotiate(&headers) {
        Ok(f) => f,
        Err(m) => return status(StatusCode::NOT_ACCEPTABLE, "NotAcceptable", m),
    };
    let pod = st.pods.get(&reflector::ObjectRef::new(&name).within(&ns));
    let usage = read_store(&st).pod(&ns, &name);
    match (pod, usage) {
        (Some(p), Some(u)) => respond_one(
            fmt,
            "PodMetrics",
            pod_metrics(
                &ns,
                &name,
                &p.metadata.labels.clone().unwrap_or_default(),
                &u,
            ),
        ),
        _ => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("podmetrics.{GROUP} \"{ns}/{name}\" not found"),
        ),
    }
}

fn json_response(v: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn group() -> Value {
    json!({
        "name": GROUP,
        "versions": [{"groupVersion": GV, "version": VERSION}],
        "preferredVersion": {"groupVersion": GV, "version": VERSION},
    })
}

async fn api_group_list() -> Response {
    let mut g = group();
    if let Value::Object(m) = &mut g {
        m.remove("kind");
    }
    json_response(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [g]}))
}

async fn api_group() -> Response {
    let mut g = group();
    if let Value::Object(m) = &mut g {
        m.insert("kind".into(), json!("APIGroup"));
        m.insert("apiVersion".into(), json!("v1"));
    }
    json_response(g)
}

async fn api_resources() -> Response {
    json_response(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GV,
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
        ],
    }))
}

fn schemas() -> Value {
    let usage = json!({"type": "object", "additionalProperties": {"type": "string"},
        "description": "The memory usage is the memory working set."});
    let meta = json!({"type": "object", "description": "Standard object's metadata."});
    json!({
        "io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics": {
            "type": "object",
            "description": "NodeMetrics sets resource usage metrics of a node.",
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": meta,
                "timestamp": {"type": "string", "format": "date-time"}, "window": {"type": "string"}, "usage": usage},
            "x-kubernetes-group-version-kind": [{"group": GROUP, "kind": "NodeMetrics", "version": VERSION}],
        },
        "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics": {
            "type": "object",
            "description": "PodMetrics sets resource usage metrics of a pod.",
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": meta,
                "timestamp": {"type": "string", "format": "date-time"}, "window": {"type": "string"},
                "containers": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "usage": usage}}}},
            "x-kubernetes-group-version-kind": [{"group": GROUP, "kind": "PodMetrics", "version": VERSION}],
        },
    })
}

async fn openapi_v2() -> Response {
    json_response(json!({
        "swagger": "2.0",
        "info": {"title": "outrigger metrics-server", "version": VERSION},
        "paths": {},
        "definitions": schemas(),
    }))
}

async fn openapi_v3() -> Response {
    json_response(json!({"paths": {
        "apis/metrics.k8s.io/v1beta1": {"serverRelativeURL": "/openapi/v3/apis/metrics.k8s.io/v1beta1"}
    }}))
}

async fn openapi_v3_gv() -> Response {
    json_response(json!({
        "openapi": "3.0.0",
        "info": {"title": "outrigger metrics-server", "version": VERSION},
        "paths": {},
        "components": {"schemas": schemas()},
    }))
}

async fn readyz(State(st): State<ApiState>) -> Response {
    let (ok, text) = st.health.ready_report();
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, text).into_response()
}

async fn livez(State(st): State<ApiState>) -> Response {
    let (ok, text) = st.health.live_report();
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, text).into_response()
}

/// The router of the secure port.
pub fn router(st: ApiState) -> Router {
    Router::new()
        .route("/apis", get(api_group_list))
        .route("/apis/metrics.k8s.io", get(api_group))
        .route("/apis/metrics.k8s.io/v1beta1", get(api_resources))
        .route("/apis/metrics.k8s.io/v1beta1/nodes", get(list_nodes))
        .route("/apis/metrics.k8s.io/v1beta1/nodes/{name}", get(get_node))
        .route("/apis/metrics.k8s.io/v1beta1/pods", get(list_all_pods))
        .route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods",
            get(list_pods),
        )
        .route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/{name}",
            get(get_pod),
        )
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(openapi_v3))
        .route(
            "/openapi/v3/apis/metrics.k8s.io/v1beta1",
            get(openapi_v3_gv),
        )
        .route("/readyz", get(readyz))
        .route("/livez", get(livez))
        .route("/healthz", get(livez))
        .fallback(|| async {
            status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource".to_string(),
            )
        })
        .layer(middleware::from_fn_with_state(st.clone(), auth))
        .with_state(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_of_paths() {
        assert_eq!(
            attributes(
                "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web",
                None
            ),
            Attributes::Resource {
                verb: "get".into(),
                resource: "pods".into(),
                namespace: Some("default".into()),
                name: Some("web".into())
            }
        );
        assert_eq!(
            attributes(
                "/apis/metrics.k8s.io/v1beta1/nodes",
                Some("labelSelector=a%3Db")
            ),
            Attributes::Resource {
                verb: "list".into(),
                resource: "nodes".into(),
                namespace: None,
                name: None
            }
        );
        assert_eq!(
            attributes("/apis/metrics.k8s.io/v1beta1/pods", Some("watch=true")),
            Attributes::Resource {
                verb: "watch".into(),
                resource: "pods".into(),
                namespace: None,
                name: None
            }
        );
        assert_eq!(
            attributes("/apis", None),
            Attributes::NonResource {
                verb: "get".into(),
                path: "/apis".into()
            }
        );
    }

    #[test]
    fn negotiation() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, v.parse().unwrap());
            m
        };
        assert_eq!(negotiate(&HeaderMap::new()), Ok(Format::Json));
        assert_eq!(negotiate(&h("application/json")), Ok(Format::Json));
        assert_eq!(
            negotiate(&h(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
            )),
            Ok(Format::Table)
        );
        assert_eq!(
            negotiate(&h("application/vnd.kubernetes.protobuf, */*")),
            Ok(Format::Json)
        );
        assert!(negotiate(&h("application/vnd.kubernetes.protobuf")).is_err());
    }

    #[test]
    fn table_sums_containers() {
        let item = json!({"metadata": {"name": "web"}, "window": "15s", "containers": [
            {"name": "a", "usage": {"cpu": "250m", "memory": "10Mi"}},
            {"name": "b", "usage": {"cpu": "500000u", "memory": "6Mi"}},
        ]});
        let t = table(&[item]);
        assert_eq!(t["rows"][0]["cells"], json!(["web", "750m", "16Mi", "15s"]));
    }

    #[test]
    fn timestamps_are_rfc3339_seconds() {
        assert_eq!(rfc3339(1_633_253_812_125_000_000), "2021-10-03T09:36:52Z");
    }
}
