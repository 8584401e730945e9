//! Whatever a kubelet (or anything posing as one) answers, parsing it and
//! storing the points — both as the server does (put into the store as the
//! answer arrives) and through a batch — must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outrigger_metrics_core::{
    parse::parse,
    store::{Batch, Store},
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let scrape = parse(text);
    let mut store = Store::new(std::time::Duration::from_secs(15));
    for at in [1_700_000_000_000_000_000, 1_700_000_015_000_000_000] {
        store.begin();
        store.put_scrape("node", &scrape, at);
        store.end();
    }
    let _ = store.node("node");
    for key in store.pod_keys().cloned().collect::<Vec<_>>() {
        let _ = store.pod(&key.namespace, &key.name);
    }
    let mut batch = Batch::default();
    batch.add_node("node", &scrape, 1);
    store.store(batch);
});
