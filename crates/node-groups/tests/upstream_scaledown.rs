//! Upstream Cluster Autoscaler's drain-rule chain test cases, over our
//! rules and pod facts (the cases building Pods are in
//! `outrigger-cluster-autoscaler`'s `tests/upstream_drain.rs`).

#![allow(clippy::unwrap_used)]

mod simulator_drainability_rules_rules_test {
    use outrigger_node_groups::scaledown::{Drainability, PodFacts, Rule, drainable};

    /// A pod each of the rules below has a different say on: the PDB rule
    /// none, the daemonset rule "drain", the mirror rule "skip".
    fn pod() -> PodFacts {
        PodFacts {
            key: "ns/p".into(),
            namespace: "ns".into(),
            daemon: true,
            mirror: true,
            ..Default::default()
        }
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/rules_test.go TestDrainable "no rules"
    #[test]
    fn no_rules() {
        assert_eq!(drainable(&[], &pod()), Drainability::Undefined);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/rules_test.go TestDrainable "first non-undefined rule returned"
    #[test]
    fn first_non_undefined_rule_returned() {
        let p = pod();
        assert_eq!(Rule::Pdb.drainable(&p), Drainability::Undefined);
        assert_eq!(
            drainable(&[Rule::Pdb, Rule::DaemonSet, Rule::Mirror], &p),
            Drainability::DrainOk
        );
        assert_eq!(
            drainable(&[Rule::Pdb, Rule::Mirror, Rule::DaemonSet], &p),
            Drainability::SkipDrain
        );
    }
}

/// Not a ported case: the default chain, in upstream's order (rules.go
/// `Default`, which has no test of its own): which rule
/// wins when several have a say.
mod pinned_default_rule_order {
    use std::time::Duration;

    use outrigger_node_groups::scaledown::{
        BlockingReason, Config, Drainability, PodFacts, Rule, drainable, rules,
    };

    fn rs_pod() -> PodFacts {
        PodFacts {
            key: "default/p".into(),
            namespace: "default".into(),
            controller: Some("ReplicaSet".into()),
            ..Default::default()
        }
    }

    fn reason(p: &PodFacts, cfg: &Config) -> Option<BlockingReason> {
        match drainable(&rules(cfg), p) {
            Drainability::Blocked { reason, .. } => Some(reason),
            _ => None,
        }
    }

    // Upstream's default list, its flags at their defaults.
    #[test]
    fn the_default_list_is_upstreams() {
        assert_eq!(
            rules(&Config::default()),
            vec![
                Rule::Mirror,
                Rule::LongTerminating,
                Rule::DaemonSet,
                Rule::SafeToEvict,
                Rule::Terminal,
                Rule::Replicated {
                    skip_custom_controller_pods: true
                },
                Rule::System {
                    disruption_timeout: Duration::from_secs(3600)
                },
                Rule::NotSafeToEvict,
                Rule::LocalStorage,
                Rule::Pdb,
            ]
        );
        let relaxed = Config {
            skip_system_pods: false,
            skip_local_storage: false,
            ..Config::default()
        };
        assert!(
            !rules(&relaxed)
                .iter()
                .any(|r| matches!(r, Rule::System { .. } | Rule::LocalStorage))
        );
    }

    // A mirror or long-terminating pod is skipped whatever else it is; a
    // daemonset or terminal pod drains even if annotated "false".
    #[test]
    fn interrupting_rules_come_before_blocking_ones() {
        let cfg = Config::default();
        let mut p = rs_pod();
        p.safe_to_evict = Some(false);
        assert_eq!(
            reason(&p, &cfg),
            Some(BlockingReason::NotSafeToEvictAnnotation)
        );
        for set in [
            |p: &mut PodFacts| p.mirror = true,
            |p: &mut PodFacts| p.long_terminating = true,
            |p: &mut PodFacts| p.daemon = true,
            |p: &mut PodFacts| p.terminal = true,
        ] {
            let mut q = p.clone();
            set(&mut q);
            assert_eq!(reason(&q, &cfg), None, "{q:?}");
        }
        // Not replicated is reported before kube-system, local storage, PDB.
        let mut q = rs_pod();
        q.controller = None;
        q.namespace = "kube-system".into();
        q.local_volumes = vec!["v".into()];
        q.pdb_blocks = true;
        assert_eq!(reason(&q, &cfg), Some(BlockingReason::NotReplicated));
        q.controller = Some("ReplicaSet".into());
        assert_eq!(
            reason(&q, &cfg),
            Some(BlockingReason::UnmovableKubeSystemPod)
        );
        q.namespace = "default".into();
        assert_eq!(
            reason(&q, &cfg),
            Some(BlockingReason::LocalStorageRequested)
        );
        q.local_volumes.clear();
        assert_eq!(reason(&q, &cfg), Some(BlockingReason::NotEnoughPdb));
    }
}
