//! Watched caches: a reflector store kept current by a watch (with backoff
//! on errors) until shutdown, and, when a controller maps changes to work,
//! each object as it is added, changed or deleted.

use std::sync::Arc;

use futures::StreamExt;
use kube::{
    Api,
    runtime::{WatchStreamExt, reflector, reflector::Store, watcher},
};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_util::sync::CancellationToken;

/// What a watched kind must be (every Kubernetes object type is).
pub trait Watched:
    kube::Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// What no controller reads and every object may carry a lot of: its
/// managed fields and `kubectl apply`'s copy of the last applied object.
fn slim<K: kube::Resource>(o: &mut K) {
    let m = o.meta_mut();
    m.managed_fields = None;
    if let Some(a) = m.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// A store of every object of the kind `api` lists.
pub fn store<K: Watched>(api: Api<K>, stop: CancellationToken) -> Store<K> {
    spawn(api, watcher::Config::default(), stop, None, |_| {})
}

/// A store of the objects `config`'s selectors pick (a node agent's pods:
/// `spec.nodeName=<node>`), each trimmed by `trim`.
pub fn store_selected<K: Watched>(
    api: Api<K>,
    config: watcher::Config,
    stop: CancellationToken,
    trim: fn(&mut K),
) -> Store<K> {
    spawn(api, config, stop, None, trim)
}

/// A store, and the objects as they change (the initial list included;
/// a deleted object is sent as it last was).
pub fn store_with_changes<K: Watched>(
    api: Api<K>,
    stop: CancellationToken,
) -> (Store<K>, UnboundedReceiver<Arc<K>>) {
    store_with_changes_trimmed(api, stop, |_| {})
}

/// [`store_with_changes`], each object trimmed by `trim` as it arrives
/// (what the caller never reads, dropped before it is stored).
pub fn store_with_changes_trimmed<K: Watched>(
    api: Api<K>,
    stop: CancellationToken,
    trim: fn(&mut K),
) -> (Store<K>, UnboundedReceiver<Arc<K>>) {
    let (tx, rx) = unbounded_channel();
    (
        spawn(api, watcher::Config::default(), stop, Some(tx), trim),
        rx,
    )
}

fn spawn<K: Watched>(
    api: Api<K>,
    config: watcher::Config,
    stop: CancellationToken,
    tx: Option<UnboundedSender<Arc<K>>>,
    trim: fn(&mut K),
) -> Store<K> {
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(move |o| {
            slim(o);
            trim(o);
        })
        .reflect(writer);
    let cache = reader.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        // Objects of a (re)list, sent once the store holds them (at the
        // list's end), so that the change feed shares the store's copies
        // instead of holding a second one of every object.
        let mut listed: Vec<reflector::ObjectRef<K>> = vec![];
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                item = stream.next() => match item {
                    Some(Ok(watcher::Event::InitApply(o))) => {
                        if tx.is_some() {
                            listed.push(reflector::ObjectRef::from_obj(&o));
                        }
                    }
                    Some(Ok(watcher::Event::InitDone)) => {
                        if let Some(tx) = &tx {
                            for r in listed.drain(..) {
                                if let Some(shared) = cache.get(&r) {
                                    let _ = tx.send(shared);
                                }
                            }
                        }
                        listed.shrink_to_fit();
                    }
                    Some(Ok(watcher::Event::Apply(o))) => {
                        if let Some(tx) = &tx {
                            // The store's own copy (shared), not a second one.
                            let shared = cache
                                .get(&reflector::ObjectRef::from_obj(&o))
                                .unwrap_or_else(|| Arc::new(o));
                            let _ = tx.send(shared);
                        }
                    }
                    Some(Ok(watcher::Event::Delete(o))) => {
                        if let Some(tx) = &tx {
                            let _ = tx.send(Arc::new(o));
                        }
                    }
                    Some(Ok(watcher::Event::Init)) => listed.clear(),
                    Some(Err(e)) => tracing::warn!(error = %e, "watch error"),
                    None => return,
                },
            }
        }
    });
    reader
}
