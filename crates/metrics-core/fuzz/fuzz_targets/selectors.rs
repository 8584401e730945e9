//! Label and field selectors come from request URLs: parsing any string must
//! not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outrigger_metrics_core::selector::{FieldSelector, LabelSelector};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = LabelSelector::parse(text) {
        let _ = s.matches(&[("app".to_string(), "web".to_string())].into());
    }
    if let Ok(f) = FieldSelector::parse(text) {
        let _ = f.matches("a", "b");
    }
});
