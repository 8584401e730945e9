//! A compact index of every pod's namespace, name and labels, fed by a
//! metadata-only watch. It is all the API needs of pods, and it is held for
//! every pod of the cluster, so it keeps nothing else (a full
//! `PartialObjectMeta` with its maps costs several times more per pod).

use outrigger_runtime::sync::RwLockExt;
use std::{
    collections::BTreeMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    api::PartialObjectMeta,
    runtime::{WatchStreamExt, watcher},
};
use outrigger_metrics_core::store::{PodKey, PodRef};

/// A pod's labels, sorted by key.
pub type Labels = Box<[(Box<str>, Box<str>)]>;

fn labels_of(p: &PartialObjectMeta<Pod>) -> Labels {
    p.metadata
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect()
}

fn key_of(p: &PartialObjectMeta<Pod>) -> Option<PodKey> {
    Some(PodKey::new(
        p.metadata.namespace.as_deref()?,
        p.metadata.name.as_deref()?,
    ))
}

pub fn lookup<'a>(labels: &'a Labels, key: &str) -> Option<&'a str> {
    labels
        .binary_search_by(|(k, _)| (**k).cmp(key))
        .ok()
        .map(|i| &*labels[i].1)
}

pub fn to_map(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[derive(Default)]
pub struct PodIndex {
    pods: RwLock<hashbrown::HashMap<PodKey, Labels>>,
    ready: AtomicBool,
    ready_notify: tokio::sync::Notify,
}

impl PodIndex {
    /// Keeps the index in step with the cluster until the watch ends.
    pub async fn run(self: Arc<Self>, api: Api<PartialObjectMeta<Pod>>) {
        let mut init: Option<hashbrown::HashMap<PodKey, Labels>> = None;
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = events.next().await {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!(error = %e, "pod watch failed; retrying");
                    continue;
                }
            };
            match ev {
                watcher::Event::Init => init = Some(hashbrown::HashMap::new()),
                watcher::Event::InitApply(p) => {
                    if let (Some(m), Some(k)) = (init.as_mut(), key_of(&p)) {
                        m.insert(k, labels_of(&p));
                    }
                }
                watcher::Event::InitDone => {
                    if let Some(m) = init.take() {
                        *self.pods.write_locked() = m;
                    }
                    self.ready.store(true, Ordering::Release);
                    self.ready_notify.notify_waiters();
                }
                watcher::Event::Apply(p) => {
                    if let Some(k) = key_of(&p) {
                        self.pods.write_locked().insert(k, labels_of(&p));
                    }
                }
                watcher::Event::Delete(p) => {
                    if let Some(k) = key_of(&p) {
                        self.pods.write_locked().remove(&k);
                    }
                }
            }
        }
    }

    /// Resolves once the first full list has been indexed.
    pub async fn wait_until_ready(&self) {
        loop {
            let notified = self.ready_notify.notified();
            if self.ready.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    pub fn labels(&self, namespace: &str, name: &str) -> Option<Labels> {
        self.pods
            .read_locked()
            .get(&PodRef { namespace, name })
            .cloned()
    }

    /// Calls `f` for every pod (optionally of one namespace).
    pub fn for_each(&self, namespace: Option<&str>, mut f: impl FnMut(&PodKey, &Labels)) {
        let pods = self.pods.read_locked();
        for (k, l) in pods.iter() {
            if namespace.is_none_or(|ns| ns == k.namespace) {
                f(k, l);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.pods.read().map(|p| p.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_and_searchable() {
        let p: PartialObjectMeta<Pod> = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "n", "labels": {"b": "2", "a": "1", "c": "3"}}
        }))
        .unwrap();
        let l = labels_of(&p);
        assert_eq!(lookup(&l, "a"), Some("1"));
        assert_eq!(lookup(&l, "c"), Some("3"));
        assert_eq!(lookup(&l, "d"), None);
        assert_eq!(key_of(&p), Some(PodKey::new("n", "p")));
        assert_eq!(to_map(&l).len(), 3);
    }
}
