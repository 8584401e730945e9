//! A work queue of keys, like client-go's: a key added while it waits is
//! queued once; a key added while a worker has it runs again after; keys
//! are retried after a per-key exponential backoff.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    hash::Hash,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Notify;

use crate::sync::LockExt;

struct State<K> {
    order: VecDeque<K>,
    queued: HashSet<K>,
    running: HashSet<K>,
    /// Added while running: queued again when done.
    again: HashSet<K>,
    failures: HashMap<K, u32>,
}

pub struct Queue<K> {
    state: Mutex<State<K>>,
    ready: Notify,
    base: Duration,
    max: Duration,
}

impl<K: Clone + Eq + Hash + Send + 'static> Queue<K> {
    /// Retries back off from `base`, doubling up to `max`.
    pub fn new(base: Duration, max: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                order: VecDeque::new(),
                queued: HashSet::new(),
                running: HashSet::new(),
                again: HashSet::new(),
                failures: HashMap::new(),
            }),
            ready: Notify::new(),
            base,
            max,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        self.state.locked()
    }

    /// Queues the key (once).
    pub fn add(&self, key: K) {
        let mut s = self.lock();
        if s.running.contains(&key) {
            s.again.insert(key);
            return;
        }
        if s.queued.insert(key.clone()) {
            s.order.push_back(key);
            drop(s);
            self.ready.notify_one();
        }
    }

    /// Queues the key after `delay`.
    pub fn add_after(self: &Arc<Self>, key: K, delay: Duration) {
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// The next key; the caller owns it until [`Queue::done`].
    pub async fn next(&self) -> K {
        loop {
            let notified = self.ready.notified();
            {
                let mut s = self.lock();
                if let Some(k) = s.order.pop_front() {
                    s.queued.remove(&k);
                    s.running.insert(k.clone());
                    let more = !s.order.is_empty();
                    drop(s);
                    if more {
                        self.ready.notify_one();
                    }
                    return k;
                }
            }
            notified.await;
        }
    }

    /// The worker is done with the key: `Ok` forgets its failures, `Err`
    /// queues it again after its backoff. A key added meanwhile runs again.
    pub fn done(self: &Arc<Self>, key: K, ok: bool) -> Option<Duration> {
        let mut s = self.lock();
        s.running.remove(&key);
        let retry = if ok {
            s.failures.remove(&key);
            None
        } else {
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            let shift = (*n - 1).min(16);
            Some((self.base * 2u32.pow(shift)).min(self.max))
        };
        let again = s.again.remove(&key);
        drop(s);
        if again {
            self.add(key.clone());
        }
        if let Some(d) = retry
            && !again
        {
            self.add_after(key, d);
        }
        retry
    }

    /// Keys waiting (not running).
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_queued_once_and_again_after_running() {
        let q = Queue::new(Duration::from_millis(10), Duration::from_secs(1));
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let k = q.next().await;
        assert_eq!(k, "a");
        // Changed while being worked on: runs again after.
        q.add("a");
        assert_eq!(q.len(), 1);
        assert_eq!(q.done("a", true), None);
        assert_eq!(q.next().await, "b");
        assert_eq!(q.next().await, "a");
    }

    #[tokio::test]
    async fn failures_back_off_and_success_resets() {
        let q = Queue::new(Duration::from_millis(5), Duration::from_millis(20));
        q.add(1);
        let k = q.next().await;
        assert_eq!(q.done(k, false), Some(Duration::from_millis(5)));
        let k = q.next().await;
        assert_eq!(q.done(k, false), Some(Duration::from_millis(10)));
        let k = q.next().await;
        assert_eq!(q.done(k, false), Some(Duration::from_millis(20)));
        let k = q.next().await;
        assert_eq!(q.done(k, false), Some(Duration::from_millis(20)));
        let k = q.next().await;
        assert_eq!(q.done(k, true), None);
        q.add(1);
        let k = q.next().await;
        assert_eq!(q.done(k, false), Some(Duration::from_millis(5)));
    }
}
