//! Publishing Kubernetes Events (`events.k8s.io/v1`) on the objects a component acts on.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client, Resource,
    runtime::events::{Event, EventType, Recorder, Reporter},
};

/// A cheap-to-clone Event publisher for one component.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
    /// Events queued by [`Events::publish_later`], written by a background
    /// task (none outside a Tokio runtime: they are then written at once).
    later: Option<tokio::sync::mpsc::Sender<(ObjectReference, Event)>>,
}

/// How many Events may wait to be written before new ones are dropped (as
/// client-go's broadcaster drops when its queue is full).
const QUEUE: usize = 4096;
/// How many queued Events are written at once.
const WRITERS: usize = 8;

impl Events {
    /// `controller` is the reporting controller's name (for example
    /// `outrigger-provisioner`); the instance is the pod name from `POD_NAME`
    /// or the host name.
    pub fn new(client: Client, controller: &str) -> Self {
        let instance = std::env::var("POD_NAME")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok());
        let reporter = Reporter {
            controller: controller.to_string(),
            instance,
        };
        let recorder = Recorder::new(client, reporter);
        let later = tokio::runtime::Handle::try_current().ok().map(|rt| {
            let (tx, rx) = tokio::sync::mpsc::channel::<(ObjectReference, Event)>(QUEUE);
            let recorder = recorder.clone();
            rt.spawn(async move {
                use futures::StreamExt;
                futures::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|item| (item, rx))
                })
                .for_each_concurrent(WRITERS, |(reference, ev)| {
                        let recorder = recorder.clone();
                        async move {
                            if let Err(e) = recorder.publish(&ev, &reference).await {
                                tracing::warn!(error = %e, reason = %ev.reason, object = ?reference.name, "failed to publish event");
                            }
                        }
                    })
                    .await;
            });
            tx
        });
        Self { recorder, later }
    }

    /// Queues an Event to be written in the background, so that a loop
    /// telling many objects (every pending pod of a scale-up) does not wait
    /// for the API server; dropped, with a log line, if the queue is full.
    pub async fn publish_later(
        &self,
        reference: ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let Some(tx) = &self.later else {
            return self.publish(reference, type_, reason, action, note).await;
        };
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(truncate(note, 1024)),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(e) = tx.try_send((reference, ev)) {
            tracing::debug!(error = %e, reason, "event queue full; event dropped");
        }
    }

    /// Publishes a Normal event. Failures are logged, never returned: an
    /// Event that cannot be written must not fail a reconcile.
    pub async fn normal<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(obj.object_ref(&()), EventType::Normal, reason, action, note)
            .await;
    }

    /// Publishes a Warning event (logged on failure).
    pub async fn warning<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(
            obj.object_ref(&()),
            EventType::Warning,
            reason,
            action,
            note,
        )
        .await;
    }

    /// Publishes an event on an object reference.
    pub async fn publish(
        &self,
        reference: ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(truncate(note, 1024)),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &reference).await {
            tracing::warn!(error = %e, reason, object = ?reference.name, "failed to publish event");
        }
    }
}

/// Events carry at most 1 kB of note; longer notes are cut at a char boundary.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("héllo".into(), 2), "h");
        assert_eq!(truncate("hello".into(), 10), "hello");
        assert_eq!(truncate("hello".into(), 3), "hel");
    }
}
