//! The node's pods, for the `kubernetes` object of each container's
//! records: watched from the API server (`spec.nodeName=<node>`), trimmed
//! to what records carry.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    runtime::{reflector::Store, watcher},
};
use outrigger_logs_core::{ContainerFile, record::Kubernetes};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Pods {
    store: Option<Store<Pod>>,
    host: String,
    labels: bool,
}

fn trim(p: &mut Pod) {
    let m = &mut p.metadata;
    m.annotations = None;
    m.finalizers = None;
    if let Some(s) = p.spec.as_mut() {
        s.volumes = None;
        s.init_containers = None;
        s.affinity = None;
        s.tolerations = None;
        for c in &mut s.containers {
            c.env = None;
            c.env_from = None;
            c.volume_mounts = None;
            c.command = None;
            c.args = None;
            c.ports = None;
            c.liveness_probe = None;
            c.readiness_probe = None;
            c.startup_probe = None;
        }
    }
    if let Some(st) = p.status.as_mut() {
        st.conditions = None;
        st.init_container_statuses = None;
    }
}

impl Pods {
    /// Watches the pods bound to `host`.
    pub fn watch(client: kube::Client, host: &str, labels: bool, stop: CancellationToken) -> Self {
        let config = watcher::Config::default().fields(&format!("spec.nodeName={host}"));
        let store =
            outrigger_runtime::watch::store_selected(Api::<Pod>::all(client), config, stop, trim);
        Pods {
            store: Some(store),
            host: host.to_string(),
            labels,
        }
    }

    /// No cluster: records carry what the file name says.
    pub fn none(host: &str) -> Self {
        Pods {
            store: None,
            host: host.to_string(),
            labels: false,
        }
    }

    /// The node's pods (none without a cluster).
    pub fn store(&self) -> Option<Store<Pod>> {
        self.store.clone()
    }

    pub async fn ready(&self) {
        if let Some(s) = &self.store {
            let _ = s.wait_until_ready().await;
        }
    }

    /// The `kubernetes` object for a container's file, `None` while its
    /// pod is not (yet) known.
    pub fn lookup(&self, file: &ContainerFile) -> Option<Kubernetes> {
        let store = self.store.as_ref()?;
        let pod = store.state().into_iter().find(|p| {
            p.metadata.name.as_deref() == Some(file.pod.as_str())
                && p.metadata.namespace.as_deref() == Some(file.namespace.as_str())
        })?;
        Some(kubernetes(&pod, file, &self.host, self.labels))
    }

    /// What the file name alone says (the pod is gone, or never known).
    pub fn from_name(&self, file: &ContainerFile) -> Kubernetes {
        Kubernetes {
            pod_name: file.pod.clone(),
            namespace_name: file.namespace.clone(),
            host: self.host.clone(),
            container_name: file.container.clone(),
            docker_id: file.container_id.clone(),
            ..Default::default()
        }
    }
}

/// The object as Fluent Bit's `kubernetes` filter writes it.
pub fn kubernetes(pod: &Pod, file: &ContainerFile, host: &str, labels: bool) -> Kubernetes {
    let spec = pod.spec.as_ref();
    let image = spec
        .and_then(|s| s.containers.iter().find(|c| c.name == file.container))
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let hash = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == file.container))
        .map(|c| c.image_id.clone())
        .unwrap_or_default();
    Kubernetes {
        pod_name: file.pod.clone(),
        namespace_name: file.namespace.clone(),
        pod_id: pod.metadata.uid.clone().unwrap_or_default(),
        labels: if labels {
            pod.metadata.labels.clone().unwrap_or_default()
        } else {
            BTreeMap::new()
        },
        annotations: BTreeMap::new(),
        host: spec
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| host.to_string()),
        container_name: file.container.clone(),
        docker_id: file.container_id.clone(),
        container_hash: hash,
        container_image: image,
    }
}
