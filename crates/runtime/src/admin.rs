//! The admin HTTP server: `/healthz`, `/readyz` and `/metrics`.
//!
//! `/readyz` answers 200 only when every registered readiness check passes (for
//! a controller: its caches have synced); otherwise 503 with the failing checks,
//! in the `[+]name ok` / `[-]name failed: reason` shape kube-apiserver uses.
//! `?verbose` lists every check. `/healthz` has the same shape for liveness.

use crate::sync::LockExt;
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
};

use axum::{
    Router,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// A named set of checks; each is `Ok` or failed with a reason.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<String, Result<(), String>>>>,
}

/// A handle on one check of a [`Readiness`] set.
#[derive(Clone, Debug)]
pub struct Check {
    set: Readiness,
    name: String,
}

impl Check {
    pub fn ok(&self) {
        self.set.lock().insert(self.name.clone(), Ok(()));
    }
    pub fn fail(&self, reason: impl Into<String>) {
        self.set
            .lock()
            .insert(self.name.clone(), Err(reason.into()));
    }
    /// Removes the check (for example when a component stops leading).
    pub fn remove(&self) {
        self.set.lock().remove(&self.name);
    }
}

impl Readiness {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Result<(), String>>> {
        // A poisoned lock only means a panic elsewhere while holding a plain
        // map insert; the map is still consistent.
        self.checks.locked()
    }

    /// Registers a check that starts failed with `reason`.
    pub fn check(&self, name: &str, reason: &str) -> Check {
        self.lock()
            .insert(name.to_string(), Err(reason.to_string()));
        Check {
            set: self.clone(),
            name: name.to_string(),
        }
    }

    /// (all passed, report text)
    pub fn report(&self, verbose: bool) -> (bool, String) {
        let checks = self.lock();
        let ok = checks.values().all(Result::is_ok);
        if ok && !verbose {
            return (true, "ok".to_string());
        }
        let mut out = String::new();
        for (name, r) in checks.iter() {
            match r {
                Ok(()) => {
                    if verbose {
                        out.push_str(&format!("[+]{name} ok\n"));
                    }
                }
                Err(reason) => out.push_str(&format!("[-]{name} failed: {reason}\n")),
            }
        }
        out.push_str(if ok { "ok\n" } else { "check failed\n" });
        (ok, out)
    }
}

/// Shared state of the admin server.
#[derive(Clone, Debug)]
pub struct AdminState {
    pub ready: Readiness,
    pub live: Readiness,
    registry: Arc<Mutex<Registry>>,
}

impl Default for AdminState {
    fn default() -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(crate::process_metrics::ProcessCollector));
        Self {
            ready: Readiness::default(),
            live: Readiness::default(),
            registry: Arc::new(Mutex::new(registry)),
        }
    }
}

impl AdminState {
    /// Runs `f` with the metric registry, to register a component's metrics.
    pub fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut r = self.registry.locked();
        f(&mut r)
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode_metrics(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        let r = self.registry.locked();
        prometheus_client::encoding::text::encode(&mut out, &r)?;
        Ok(out)
    }

    /// The admin routes; components may merge their own.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/livez", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }

    /// Serves the admin routes on `addr` until `shutdown` is cancelled.
    /// Returns the bound address once listening (port 0 picks a free port).
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: CancellationToken,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let app = self.router();
        let handle = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        });
        Ok((local, handle))
    }
}

#[derive(serde::Deserialize, Default)]
struct Verbose {
    verbose: Option<String>,
}

fn check_response(set: &Readiness, q: &Verbose) -> Response {
    let (ok, body) = set.report(q.verbose.is_some());
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn healthz(State(s): State<AdminState>, Query(q): Query<Verbose>) -> Response {
    check_response(&s.live, &q)
}

async fn readyz(State(s): State<AdminState>, Query(q): Query<Verbose>) -> Response {
    check_response(&s.ready, &q)
}

async fn metrics(State(s): State<AdminState>) -> Response {
    match s.encode_metrics() {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to encode metrics",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_reports_failing_checks() {
        let r = Readiness::default();
        assert_eq!(r.report(false), (true, "ok".to_string()));
        let c = r.check("caches", "not synced");
        let (ok, text) = r.report(false);
        assert!(!ok);
        assert!(text.contains("[-]caches failed: not synced"), "{text}");
        c.ok();
        assert_eq!(r.report(false), (true, "ok".to_string()));
        let (_, verbose) = r.report(true);
        assert!(verbose.contains("[+]caches ok"), "{verbose}");
        c.fail("watch lost");
        assert!(!r.report(false).0);
        c.remove();
        assert!(r.report(false).0);
    }

    #[tokio::test]
    async fn serves_endpoints() {
        let s = AdminState::default();
        let check = s.ready.check("caches", "not synced");
        let stop = CancellationToken::new();
        let (addr, handle) = s
            .serve(([127, 0, 0, 1], 0).into(), stop.clone())
            .await
            .unwrap();
        let get = |path: &'static str| async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream
                .write_all(
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await
                .unwrap();
            let mut buf = String::new();
            stream.read_to_string(&mut buf).await.unwrap();
            buf
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        let r = get("/readyz").await;
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
        check.ok();
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        let m = get("/metrics").await;
        assert!(m.contains("process_resident_memory_bytes"), "{m}");
        assert!(m.trim_end().ends_with("# EOF"), "{m}");
        stop.cancel();
        handle.await.unwrap().unwrap();
    }
}
