//! One way to write a controller.
//!
//! Watches ([`crate::watch`]) map each change to the keys it affects and
//! add them to the controller's [`Queue`]; `workers` tasks take keys one at a
//! time (never the same key twice at once) and run `reconcile`, which reads
//! the watched caches, decides with pure code, acts, and says what next:
//! [`Action::Done`] (wait for the next change), [`Action::RequeueAfter`] (a
//! timer, for what no watch announces: a TTL running out). An error is
//! logged with its [`ErrorKind`], counted under that kind, and the key is
//! retried after a per-key exponential backoff (0.5 s doubling to 5 min by
//! default), or after the error's own delay.
//!
//! Metrics, under the component's prefix: `<prefix>_reconciles{kind,result}`
//! (`result` is `success` or the error's kind), `<prefix>_reconcile_seconds`,
//! `<prefix>_queue_depth`.

use std::{fmt, future::Future, hash::Hash, sync::Arc, time::Duration};

use prometheus_client::metrics::{
    counter::Counter,
    family::Family,
    gauge::Gauge,
    histogram::{Histogram, exponential_buckets},
};
use tokio_util::sync::CancellationToken;

use crate::{admin::AdminState, queue::Queue};

/// What a reconcile asks for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing until a watch adds the key again.
    Done,
    /// Run again after this long (and earlier if a watch adds the key).
    RequeueAfter(Duration),
}

impl Action {
    pub fn requeue(d: Duration) -> Self {
        Action::RequeueAfter(d)
    }
}

/// An error a reconcile can return: its kind is a metric label and, where
/// the error is reported on an object, the Event reason.
pub trait ErrorKind: fmt::Display {
    /// CamelCase, stable: `KubeError`, `AwsError`, `LaunchFailed`...
    fn kind(&self) -> &'static str;
    /// Retry after this long instead of the queue's backoff (for an error
    /// that is a wait: "the Service is not there yet").
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

impl ErrorKind for kube::Error {
    fn kind(&self) -> &'static str {
        match self {
            kube::Error::Api(e) if e.code == 409 => "Conflict",
            kube::Error::Api(e) if e.code == 404 => "NotFound",
            _ => "KubeError",
        }
    }
}

/// The label of the key a reconcile worked on (`kind` in the metrics):
/// `service`, `ingress`, `nodeclaim`...
pub trait KeyKind {
    fn kind(&self) -> &'static str;
}

#[derive(Clone)]
struct Metrics {
    reconciles: Family<Vec<(&'static str, String)>, Counter>,
    seconds: Histogram,
    depth: Gauge,
}

/// A keyed controller: its queue, and the workers that drain it.
pub struct Controller<K> {
    name: &'static str,
    queue: Arc<Queue<K>>,
    metrics: Metrics,
}

impl<K> Controller<K>
where
    K: Clone + Eq + Hash + fmt::Debug + KeyKind + Send + Sync + 'static,
{
    /// A controller named `name` (logs) whose metrics are registered on
    /// `admin` under `prefix`; failures back off from 0.5 s to 5 min.
    pub fn new(name: &'static str, prefix: &str, admin: &AdminState) -> Self {
        Self::with_backoff(
            name,
            prefix,
            admin,
            Duration::from_millis(500),
            Duration::from_secs(300),
        )
    }

    pub fn with_backoff(
        name: &'static str,
        prefix: &str,
        admin: &AdminState,
        base: Duration,
        max: Duration,
    ) -> Self {
        let metrics = Metrics {
            reconciles: Family::default(),
            seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            depth: Gauge::default(),
        };
        admin.with_registry(|r| {
            r.register(
                format!("{prefix}_reconciles"),
                format!("{name} reconciles by kind and result (success, or the error's kind)"),
                metrics.reconciles.clone(),
            );
            r.register(
                format!("{prefix}_reconcile_seconds"),
                format!("Time of one {name} reconcile"),
                metrics.seconds.clone(),
            );
            r.register(
                format!("{prefix}_queue_depth"),
                format!("Keys waiting for a {name} worker"),
                metrics.depth.clone(),
            );
        });
        Self {
            name,
            queue: Queue::new(base, max),
            metrics,
        }
    }

    /// The queue watches add keys to.
    pub fn queue(&self) -> Arc<Queue<K>> {
        self.queue.clone()
    }

    /// Runs `workers` workers until `stop`.
    pub async fn run<F, Fut, E>(self, workers: usize, stop: CancellationToken, reconcile: F)
    where
        F: Fn(K) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        E: ErrorKind + Send + 'static,
    {
        let reconcile = Arc::new(reconcile);
        let this = Arc::new(self);
        let mut tasks = vec![];
        for _ in 0..workers.max(1) {
            let (this, reconcile, stop) = (this.clone(), reconcile.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let key = tokio::select! {
                        _ = stop.cancelled() => return,
                        k = this.queue.next() => k,
                    };
                    let start = std::time::Instant::now();
                    let result = tokio::select! {
                        // Shutdown does not wait for a slow call.
                        _ = stop.cancelled() => return,
                        r = reconcile(key.clone()) => r,
                    };
                    this.finish(key, start, result);
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    fn finish<E: ErrorKind>(&self, key: K, start: std::time::Instant, result: Result<Action, E>) {
        self.metrics.seconds.observe(start.elapsed().as_secs_f64());
        let outcome = match &result {
            Ok(_) => "success",
            Err(e) => e.kind(),
        };
        self.metrics
            .reconciles
            .get_or_create(&vec![
                ("kind", key.kind().to_string()),
                ("result", outcome.to_string()),
            ])
            .inc();
        match result {
            Ok(Action::Done) => {
                self.queue.done(key, true);
            }
            Ok(Action::RequeueAfter(d)) => {
                self.queue.done(key.clone(), true);
                self.queue.add_after(key, d);
            }
            Err(e) => match e.retry_after() {
                Some(d) => {
                    tracing::debug!(controller = self.name, key = ?key, reason = e.kind(), error = %e, "waiting");
                    self.queue.done(key.clone(), true);
                    self.queue.add_after(key, d);
                }
                None => {
                    let backoff = self.queue.done(key.clone(), false);
                    tracing::warn!(
                        controller = self.name,
                        key = ?key,
                        reason = e.kind(),
                        error = %e,
                        retry_in_ms = backoff.map(|d| d.as_millis() as u64),
                        "reconcile failed; retrying"
                    );
                }
            },
        }
        self.metrics.depth.set(self.queue.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct Key(&'static str);

    impl KeyKind for Key {
        fn kind(&self) -> &'static str {
            "test"
        }
    }

    #[derive(Debug)]
    struct Flaky;

    impl fmt::Display for Flaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "flaky")
        }
    }

    impl ErrorKind for Flaky {
        fn kind(&self) -> &'static str {
            "Flaky"
        }
    }

    #[tokio::test]
    async fn errors_are_retried_with_backoff_and_counted_by_kind() {
        let admin = AdminState::default();
        let c = Controller::with_backoff(
            "test",
            "outrigger_test",
            &admin,
            Duration::from_millis(5),
            Duration::from_millis(20),
        );
        let q = c.queue();
        let runs = Arc::new(AtomicU32::new(0));
        let stop = CancellationToken::new();
        let r = runs.clone();
        let task = tokio::spawn(c.run(1, stop.clone(), move |_k: Key| {
            let r = r.clone();
            async move {
                // Fails twice, then asks to run again in 10 ms, then done.
                match r.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(Flaky),
                    2 => Ok(Action::requeue(Duration::from_millis(10))),
                    _ => Ok(Action::Done),
                }
            }
        }));
        q.add(Key("a"));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while runs.load(Ordering::SeqCst) < 4 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        stop.cancel();
        let _ = task.await;
        let text = admin.encode_metrics().unwrap();
        assert!(
            text.contains(r#"outrigger_test_reconciles_total{kind="test",result="Flaky"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"outrigger_test_reconciles_total{kind="test",result="success"} 2"#),
            "{text}"
        );
    }
}
