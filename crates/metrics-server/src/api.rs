//! The `metrics.k8s.io/v1beta1` API: discovery, NodeMetrics and PodMetrics
//! (get, list with label and field selectors), JSON and Table output,
//! metav1.Status errors, and the OpenAPI documents the aggregator fetches.

use outrigger_runtime::sync::RwLockExt;
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
use k8s_openapi::api::core::v1::Node;
use kube::runtime::reflector;
use serde_json::{Value, json};

use crate::{
    auth::{Attributes, Authenticator, Authorizer, PeerCerts},
    index, proto,
    selector::{FieldSelector, LabelSelector},
    store::{Nanos, PodUsage, Store, Usage},
};
use outrigger_values::{Quantity, duration::format_go as go_duration, quantity::format_scaled};
use prost::Message;

/// CPU nanocores in Kubernetes' canonical form (`250m`, `12345n`).
fn cpu_from_nanocores(n: u64) -> String {
    format_scaled("cpu", i64::try_from(n).unwrap_or(i64::MAX), 1_000_000_000)
}

/// Bytes in Kubernetes' canonical binary form (`512Mi`).
fn memory_from_bytes(b: u64) -> String {
    Quantity::from_units(i64::try_from(b).unwrap_or(i64::MAX))
        .binary()
        .to_string()
}

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
const GV: &str = "metrics.k8s.io/v1beta1";

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<RwLock<Store>>,
    pub nodes: reflector::Store<Node>,
    pub pods: Arc<crate::index::PodIndex>,
    pub authn: Arc<Authenticator>,
    pub authz: Arc<Authorizer>,
    pub always_allow: Arc<Vec<String>>,
    pub health: Arc<crate::Health>,
    /// Bumped after every scrape cycle is stored (wakes watches).
    pub updates: tokio::sync::watch::Sender<u64>,
    /// Ends open watches on shutdown.
    pub shutdown: tokio_util::sync::CancellationToken,
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
    timeout_seconds: Option<u64>,
}

impl ListQuery {
    fn is_watch(&self) -> bool {
        self.watch
            .as_deref()
            .is_some_and(|w| w == "true" || w == "1")
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Json,
    Protobuf,
    Table,
}

/// Picks the response format from the Accept header, in the client's order
/// of preference; `Err` is a 406.
fn negotiate(headers: &HeaderMap) -> Result<Format, String> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    for part in accept.split(',') {
        let mut it = part.split(';').map(str::trim);
        let mime = it.next().unwrap_or_default();
        let params: Vec<String> = it.map(|p| p.replace(' ', "")).collect();
        let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
        match (mime, as_) {
            ("application/json" | "*/*" | "application/*", Some("Table")) => {
                return Ok(Format::Table);
            }
            ("application/json" | "*/*" | "application/*", None) => return Ok(Format::Json),
            (proto::CONTENT_TYPE, None) => return Ok(Format::Protobuf),
            _ => {}
        }
    }
    Err(format!(
        "only the following media types are accepted: application/json, {}, application/json;as=Table;v=v1;g=meta.k8s.io (asked for {accept})",
        proto::CONTENT_TYPE
    ))
}

fn rfc3339(nanos: Nanos) -> String {
    jiff::Timestamp::from_nanosecond(nanos as i128)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn now_nanos() -> Nanos {
    jiff::Timestamp::now().as_nanosecond() as Nanos
}

/// One NodeMetrics or PodMetrics, before it is rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub name: String,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub created: Nanos,
    pub timestamp: Nanos,
    pub window: Nanos,
    /// One entry, unnamed, for a node; one per container for a pod.
    pub usage: Vec<(Option<String>, Usage)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Node,
    Pod,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Node => "NodeMetrics",
            Kind::Pod => "PodMetrics",
        }
    }
}

fn usage_pairs(u: &Usage) -> [(&'static str, String); 2] {
    [
        ("cpu", cpu_from_nanocores(u.cpu_nanocores)),
        ("memory", memory_from_bytes(u.memory_bytes)),
    ]
}

fn usage_json(u: &Usage) -> Value {
    let [(_, cpu), (_, mem)] = usage_pairs(u);
    json!({"cpu": cpu, "memory": mem})
}

fn item_json(kind: Kind, it: &Item) -> Value {
    let mut meta =
        json!({"name": it.name, "creationTimestamp": rfc3339(it.created), "labels": it.labels});
    if let Some(ns) = &it.namespace {
        meta["namespace"] = json!(ns);
    }
    let mut v = json!({
        "kind": kind.name(),
        "apiVersion": GV,
        "metadata": meta,
        "timestamp": rfc3339(it.timestamp),
        "window": go_duration(it.window),
    });
    match kind {
        Kind::Node => {
            v["usage"] = it
                .usage
                .first()
                .map(|(_, u)| usage_json(u))
                .unwrap_or(json!({}));
        }
        Kind::Pod => {
            v["containers"] = it
                .usage
                .iter()
                .map(|(c, u)| json!({"name": c, "usage": usage_json(u)}))
                .collect();
        }
    }
    v
}

fn item_meta_proto(it: &Item) -> proto::ObjectMeta {
    proto::ObjectMeta {
        name: Some(it.name.clone()),
        namespace: it.namespace.clone(),
        creation_timestamp: Some(proto::time(it.created)),
        labels: it.labels.clone(),
    }
}

fn node_proto(it: &Item) -> proto::NodeMetrics {
    proto::NodeMetrics {
        metadata: Some(item_meta_proto(it)),
        timestamp: Some(proto::time(it.timestamp)),
        window: Some(proto::Duration {
            duration: Some(it.window),
        }),
        usage: it
            .usage
            .first()
            .map(|(_, u)| proto::quantities(&usage_pairs(u)))
            .unwrap_or_default(),
    }
}

fn pod_proto(it: &Item) -> proto::PodMetrics {
    proto::PodMetrics {
        metadata: Some(item_meta_proto(it)),
        timestamp: Some(proto::time(it.timestamp)),
        window: Some(proto::Duration {
            duration: Some(it.window),
        }),
        containers: it
            .usage
            .iter()
            .map(|(c, u)| proto::ContainerMetrics {
                name: c.clone(),
                usage: proto::quantities(&usage_pairs(u)),
            })
            .collect(),
    }
}

fn proto_response(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, proto::CONTENT_TYPE)],
        body,
    )
        .into_response()
}

fn respond(fmt: Format, kind: Kind, items: &[Item]) -> Response {
    match fmt {
        Format::Json => {
            let body = json!({
                "kind": format!("{}List", kind.name()),
                "apiVersion": GV,
                "metadata": {},
                "items": items.iter().map(|i| item_json(kind, i)).collect::<Vec<_>>(),
            });
            json_response(body)
        }
        Format::Table => json_response(table(items)),
        Format::Protobuf => {
            let raw = match kind {
                Kind::Node => proto::NodeMetricsList {
                    metadata: Some(proto::ListMeta::default()),
                    items: items.iter().map(node_proto).collect(),
                }
                .encode_to_vec(),
                Kind::Pod => proto::PodMetricsList {
                    metadata: Some(proto::ListMeta::default()),
                    items: items.iter().map(pod_proto).collect(),
                }
                .encode_to_vec(),
            };
            proto_response(proto::envelope(GV, &format!("{}List", kind.name()), raw))
        }
    }
}

fn respond_one(fmt: Format, kind: Kind, item: &Item) -> Response {
    match fmt {
        Format::Json => json_response(item_json(kind, item)),
        Format::Table => respond(fmt, kind, std::slice::from_ref(item)),
        Format::Protobuf => {
            let raw = match kind {
                Kind::Node => node_proto(item).encode_to_vec(),
                Kind::Pod => pod_proto(item).encode_to_vec(),
            };
            proto_response(proto::envelope(GV, kind.name(), raw))
        }
    }
}

/// A meta.k8s.io/v1 Table like upstream's: Name, CPU, Memory, Window, with
/// a pod's containers summed.
fn table(items: &[Item]) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|it| {
            let cpu: u64 = it.usage.iter().map(|(_, u)| u.cpu_nanocores).sum();
            let mem: u64 = it.usage.iter().map(|(_, u)| u.memory_bytes).sum();
            let mut meta = json!({"name": it.name, "creationTimestamp": rfc3339(it.created), "labels": it.labels});
            if let Some(ns) = &it.namespace {
                meta["namespace"] = json!(ns);
            }
            json!({
                "cells": [it.name, cpu_from_nanocores(cpu), memory_from_bytes(mem), go_duration(it.window)],
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
    let l = LabelSelector::parse(q.label_selector.as_deref().unwrap_or(""))
        .map_err(|e| Box::new(status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string())))?;
    let f = FieldSelector::parse(q.field_selector.as_deref().unwrap_or(""))
        .map_err(|e| Box::new(status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string())))?;
    Ok((l, f))
}

fn node_item(name: &str, labels: BTreeMap<String, String>, u: &Usage, now: Nanos) -> Item {
    Item {
        name: name.to_string(),
        namespace: None,
        labels,
        created: now,
        timestamp: u.timestamp,
        window: u.window,
        usage: vec![(None, *u)],
    }
}

fn pod_item(
    ns: &str,
    name: &str,
    labels: BTreeMap<String, String>,
    u: PodUsage,
    now: Nanos,
) -> Item {
    Item {
        name: name.to_string(),
        namespace: Some(ns.to_string()),
        labels,
        created: now,
        timestamp: u.timestamp,
        window: u.window,
        usage: u
            .containers
            .into_iter()
            .map(|(c, u)| (Some(c), u))
            .collect(),
    }
}

fn read_store(st: &ApiState) -> std::sync::RwLockReadGuard<'_, Store> {
    st.store.read_locked()
}

fn node_items(st: &ApiState, ls: &LabelSelector, fs: &FieldSelector) -> Vec<Item> {
    let store = read_store(st);
    let now = now_nanos();
    let mut items: Vec<Item> = st
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
            Some(node_item(name, labels, &u, now))
        })
        .collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    items
}

fn pod_items(
    st: &ApiState,
    namespace: Option<&str>,
    ls: &LabelSelector,
    fs: &FieldSelector,
) -> Vec<Item> {
    let store = read_store(st);
    let now = now_nanos();
    let mut items = Vec::new();
    st.pods.for_each(namespace, |key, labels| {
        if !fs.matches(&key.name, &key.namespace) || !ls.matches_with(|k| index::lookup(labels, k))
        {
            return;
        }
        if let Some(u) = store.pod(&key.namespace, &key.name) {
            items.push(pod_item(
                &key.namespace,
                &key.name,
                index::to_map(labels),
                u,
                now,
            ));
        }
    });
    items.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    items
}

/// What makes two versions of an item differ for a watcher.
fn same_sample(a: &Item, b: &Item) -> bool {
    a.timestamp == b.timestamp && a.window == b.window && a.usage == b.usage && a.labels == b.labels
}

fn watch_event(kind: Kind, fmt: Format, type_: &str, it: &Item) -> String {
    let object = match fmt {
        Format::Table => table(std::slice::from_ref(it)),
        _ => item_json(kind, it),
    };
    let mut line = json!({"type": type_, "object": object}).to_string();
    line.push('\n');
    line
}

/// A watch: ADDED for every item now, then after each scrape cycle
/// MODIFIED for new samples, ADDED for new items and DELETED for items gone,
/// until `timeoutSeconds` (default 30 min) or shutdown. Newline-delimited
/// JSON watch events, as kube-apiserver streams them.
fn watch<F>(
    st: ApiState,
    kind: Kind,
    fmt: Format,
    timeout_seconds: Option<u64>,
    collect: F,
) -> Response
where
    F: Fn(&ApiState) -> Vec<Item> + Send + Sync + 'static,
{
    use futures::StreamExt;
    type Key = (Option<String>, String);
    let fmt = if fmt == Format::Protobuf {
        Format::Json
    } else {
        fmt
    };
    let timeout = std::time::Duration::from_secs(timeout_seconds.unwrap_or(1800).clamp(1, 3600));
    let deadline = tokio::time::Instant::now() + timeout;
    let rx = st.updates.subscribe();
    let shutdown = st.shutdown.clone();
    let state = (st, rx, None::<BTreeMap<Key, Item>>, collect);
    let stream = futures::stream::unfold(state, move |(st, mut rx, prev, collect)| {
        let shutdown = shutdown.clone();
        async move {
            let mut prev = prev;
            loop {
                if let Some(p) = &prev {
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep_until(deadline) => return None,
                        r = rx.changed() => if r.is_err() { return None },
                    }
                    let now: BTreeMap<Key, Item> = collect(&st)
                        .into_iter()
                        .map(|i| ((i.namespace.clone(), i.name.clone()), i))
                        .collect();
                    let mut chunk = String::new();
                    for (k, it) in &now {
                        match p.get(k) {
                            None => chunk.push_str(&watch_event(kind, fmt, "ADDED", it)),
                            Some(old) if !same_sample(old, it) => {
                                chunk.push_str(&watch_event(kind, fmt, "MODIFIED", it))
                            }
                            Some(_) => {}
                        }
                    }
                    for (k, it) in p {
                        if !now.contains_key(k) {
                            chunk.push_str(&watch_event(kind, fmt, "DELETED", it));
                        }
                    }
                    prev = Some(now);
                    if !chunk.is_empty() {
                        return Some((
                            Ok::<_, std::convert::Infallible>(chunk),
                            (st, rx, prev, collect),
                        ));
                    }
                } else {
                    rx.borrow_and_update();
                    let now: BTreeMap<Key, Item> = collect(&st)
                        .into_iter()
                        .map(|i| ((i.namespace.clone(), i.name.clone()), i))
                        .collect();
                    let chunk: String = now
                        .values()
                        .map(|it| watch_event(kind, fmt, "ADDED", it))
                        .collect();
                    prev = Some(now);
                    if !chunk.is_empty() {
                        return Some((Ok(chunk), (st, rx, prev, collect)));
                    }
                }
            }
        }
    })
    .boxed();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
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
    if q.is_watch() {
        return watch(st, Kind::Node, fmt, q.timeout_seconds, move |st| {
            node_items(st, &ls, &fs)
        });
    }
    let items = node_items(&st, &ls, &fs);
    respond(fmt, Kind::Node, &items)
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
            Kind::Node,
            &node_item(
                &name,
                n.metadata.labels.clone().unwrap_or_default(),
                &u,
                now_nanos(),
            ),
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
    if q.is_watch() {
        let ns = namespace.map(str::to_string);
        return watch(st.clone(), Kind::Pod, fmt, q.timeout_seconds, move |st| {
            pod_items(st, ns.as_deref(), &ls, &fs)
        });
    }
    respond(fmt, Kind::Pod, &pod_items(st, namespace, &ls, &fs))
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
    let pod = st.pods.labels(&ns, &name);
    let usage = read_store(&st).pod(&ns, &name);
    match (pod, usage) {
        (Some(p), Some(u)) => respond_one(
            fmt,
            Kind::Pod,
            &pod_item(&ns, &name, index::to_map(&p), u, now_nanos()),
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
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list", "watch"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list", "watch"]},
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
            Ok(Format::Protobuf)
        );
        assert_eq!(
            negotiate(&h("application/vnd.kubernetes.protobuf,application/json")),
            Ok(Format::Protobuf)
        );
        assert_eq!(
            negotiate(&h("application/yaml, application/json")),
            Ok(Format::Json)
        );
        assert!(negotiate(&h("application/yaml")).is_err());
    }

    fn usage(cpu: u64, mem: u64) -> Usage {
        Usage {
            timestamp: 1_700_000_000_000_000_000,
            window: 15_000_000_000,
            cpu_nanocores: cpu,
            memory_bytes: mem,
        }
    }

    fn pod() -> Item {
        pod_item(
            "default",
            "web",
            [("app".to_string(), "web".to_string())].into(),
            PodUsage {
                timestamp: 1_700_000_000_000_000_000,
                window: 15_000_000_000,
                containers: vec![
                    ("a".into(), usage(250_000_000, 10 << 20)),
                    ("b".into(), usage(500_000_000, 6 << 20)),
                ],
            },
            1_700_000_001_000_000_000,
        )
    }

    #[test]
    fn table_sums_containers() {
        let t = table(&[pod()]);
        assert_eq!(t["rows"][0]["cells"], json!(["web", "750m", "16Mi", "15s"]));
        assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "default");
    }

    #[test]
    fn json_shape() {
        let v = item_json(Kind::Pod, &pod());
        assert_eq!(v["kind"], "PodMetrics");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["window"], "15s");
        assert_eq!(
            v["containers"][1],
            json!({"name": "b", "usage": {"cpu": "500m", "memory": "6Mi"}})
        );
        let n = item_json(
            Kind::Node,
            &node_item("n1", BTreeMap::new(), &usage(1, 1024), 0),
        );
        assert_eq!(n["usage"], json!({"cpu": "1n", "memory": "1Ki"}));
        assert!(n["metadata"].get("namespace").is_none());
    }

    #[test]
    fn protobuf_list_decodes() {
        let items = [pod()];
        let r = respond(Format::Protobuf, Kind::Pod, &items);
        assert_eq!(r.headers()[header::CONTENT_TYPE], proto::CONTENT_TYPE);
        let p = pod_proto(&items[0]);
        assert_eq!(p.containers.len(), 2);
        assert_eq!(p.containers[0].usage["cpu"].string.as_deref(), Some("250m"));
        assert_eq!(
            p.metadata.as_ref().and_then(|m| m.namespace.as_deref()),
            Some("default")
        );
    }

    #[test]
    fn timestamps_are_rfc3339_seconds() {
        assert_eq!(rfc3339(1_633_253_812_125_000_000), "2021-10-03T09:36:52Z");
    }
}
