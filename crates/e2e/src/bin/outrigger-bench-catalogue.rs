//! Prints the kwok provider's catalogue (the bundled AWS-shaped instance
//! types, in the given zones, spot at a third of on-demand) in the format
//! of Karpenter's kwok provider (`--instance-types-file-path`), so that in
//! the disruption benchmark both controllers choose from the same types at
//! the same prices. The names of the zones are the arguments (default: the
//! environment's three).
//!
//!     cargo run -q -p outrigger-e2e --bin outrigger-bench-catalogue > types.json

use outrigger_scheduling::model::LABEL_ARCH;
use serde_json::json;

fn main() {
    let mut zones: Vec<String> = std::env::args().skip(1).collect();
    if zones.is_empty() {
        zones = ["ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"]
            .map(String::from)
            .to_vec();
    }
    let types = outrigger_provisioner::cloud::kwok::catalogue(&zones);
    let out: Vec<serde_json::Value> = types
        .iter()
        .map(|t| {
            let arch = t
                .requirements
                .get(LABEL_ARCH)
                .and_then(|r| r.single())
                .unwrap_or("amd64");
            json!({
                "name": t.name,
                "offerings": t.offerings.iter().map(|o| json!({
                    "Price": o.price,
                    "Available": o.available,
                    "Requirements": [
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [o.capacity_type]},
                        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [o.zone]},
                    ],
                })).collect::<Vec<_>>(),
                "architecture": arch,
                "operatingSystems": ["linux"],
                "resources": {
                    "cpu": format!("{}m", t.capacity.cpu_millis),
                    "memory": format!("{}", t.capacity.memory_bytes),
                    "pods": format!("{}", t.capacity.pods),
                    "ephemeral-storage": "20Gi",
                },
            })
        })
        .collect();
    println!(
        "{}",
        serde_json::to_string(&out).unwrap_or_else(|e| panic!("{e}"))
    );
}
