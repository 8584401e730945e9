//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! The lock itself is `kube-lease-manager` (server-side apply, conflict
//! detection, skew tolerance). This module adds what a controller needs on top:
//! a standby watches the Lease and tries at once when the holder releases it
//! (instead of sleeping until the old expiry), leadership is published on a
//! watch channel and as the `outrigger_leader` gauge, and [`Elector::release`]
//! frees the Lease on shutdown so a successor takes over immediately.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub lease_name: String,
    pub namespace: String,
    /// Unique among candidates: the pod name, or host name plus pid.
    pub identity: String,
    /// How long a lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// The holder renews this long before expiry.
    pub renew_grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
}

/// A running candidate. Leadership changes arrive on [`Elector::subscribe`].
pub struct Elector {
    rx: watch::Receiver<bool>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Elector {
    /// Creates the Lease if needed and starts competing for it.
    pub async fn start(client: Client, cfg: LeaderConfig) -> Result<Self, LeaderError> {
        let duration = cfg.lease_duration.as_secs().max(2);
        let grace = cfg.renew_grace.as_secs().clamp(1, duration - 1);
        let manager = LeaseManagerBuilder::new(client.clone(), &cfg.lease_name)
            .with_namespace(&cfg.namespace)
            .with_identity(&cfg.identity)
            .with_duration(duration)
            .with_grace(grace)
            .with_field_manager(format!("outrigger-{}", cfg.identity))
            .build()
            .await?;
        let (tx, rx) = watch::channel(false);
        let stop = CancellationToken::new();
        let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
        let task = tokio::spawn(run(manager, api, cfg, tx, stop.clone()));
        Ok(Self { rx, stop, task })
    }

    /// A receiver of the leadership state (true while leading).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    /// Stops competing and releases the Lease if held.
    pub async fn release(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn run(
    manager: LeaseManager,
    api: Api<Lease>,
    cfg: LeaderConfig,
    tx: watch::Sender<bool>,
    stop: CancellationToken,
) {
    // A watch on our one Lease: when its holder disappears while we stand by,
    // we retry at once rather than sleeping until the old expiry.
    let freed = std::sync::Arc::new(tokio::sync::Notify::new());
    let watch_task = {
        let freed = freed.clone();
        let identity = cfg.identity.clone();
        let wc = watcher::Config::default().fields(&format!("metadata.name={}", cfg.lease_name));
        tokio::spawn(async move {
            let mut s = watcher(api, wc).default_backoff().applied_objects().boxed();
            while let Some(ev) = s.next().await {
                if let Ok(lease) = ev {
                    let holder = lease
                        .spec
                        .and_then(|s| s.holder_identity)
                        .unwrap_or_default();
                    if holder.is_empty() || holder != identity {
                        freed.notify_one();
                    }
                }
            }
        })
    };
    let mut leading = false;
    let mut backoff = Duration::from_millis(500);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            r = manager.changed() => match r {
                Ok(is_leader) => {
                    backoff = Duration::from_millis(500);
                    if is_leader != leading {
                        leading = is_leader;
                        if is_leader {
                            tracing::info!(lease = %cfg.lease_name, identity = %cfg.identity, "successfully acquired lease");
                        } else {
                            tracing::warn!(lease = %cfg.lease_name, identity = %cfg.identity, "leader lease lost");
                        }
                        let _ = tx.send(is_leader);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, lease = %cfg.lease_name, "leader election error; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            },
            // Only a standby cares; the holder's own renewals also wake this,
            // which merely restarts the (cancel-safe) wait.
            _ = freed.notified(), if !leading => {}
        }
    }
    watch_task.abort();
    if leading {
        let _ = tx.send(false);
    }
    match manager.release().await {
        Ok(()) => {
            tracing::info!(lease = %cfg.lease_name, identity = %cfg.identity, "released lease")
        }
        Err(e) => tracing::warn!(error = %e, lease = %cfg.lease_name, "failed to release lease"),
    }
}

/// The default identity: `POD_NAME` if set, else `<hostname>_<pid>`.
pub fn default_identity() -> String {
    if let Ok(p) = std::env::var("POD_NAME")
        && !p.is_empty()
    {
        return p;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "outrigger".to_string());
    format!("{host}_{}", std::process::id())
}
