//! Whatever a kubelet (or anything posing as one) answers, parsing it and
//! storing the points must not panic.
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
    let mut batch = Batch::default();
    batch.add_node("node", &scrape, 1_700_000_000_000_000_000);
    let mut store = Store::new(std::time::Duration::from_secs(15));
    store.store(batch.clone());
    store.store(batch);
    let _ = store.node("node");
    for (ns, pod) in store.pod_keys().cloned().collect::<Vec<_>>() {
        let _ = store.pod(&ns, &pod);
    }
});
