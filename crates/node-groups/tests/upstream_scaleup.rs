//! Cluster Autoscaler 1.34's unit-test cases for scale-up (expanders, the
//! binpacking estimator, similar node groups, cluster-wide limits), ported
//! as their inputs and expected outcomes over this crate's API. One module
//! per upstream test file, one test per upstream case; each names its
//! upstream case.

#![allow(clippy::unwrap_used)]

use outrigger_node_groups::{
    expander::{Context, PodPricing, Priorities},
    group::{NodeGroup, Template},
    scaleup::Estimate,
};
use outrigger_scheduling::{model::Labels, resources::Resources};

const MIB: i64 = 1 << 20;
const GIB: i64 = 1 << 30;

fn res(cpu_millis: i64, memory_bytes: i64, pods: i64) -> Resources {
    Resources {
        cpu_millis,
        memory_bytes,
        pods,
        ..Default::default()
    }
}

/// A group whose nodes have this capacity (allocatable the same) and
/// hourly price.
fn group(id: &str, capacity: Resources, price: Option<f64>) -> NodeGroup {
    let mut t = Template::from_node(Some(id), &Labels::new(), &[], &capacity, &capacity);
    t.price = price;
    NodeGroup {
        id: id.into(),
        min: 1,
        max: 10,
        target: 1,
        instances: vec![],
        template: Some(t),
    }
}

/// An option: `nodes` nodes of group `g` for `pods` pods requesting
/// `pod_requests` in all.
fn option(g: usize, nodes: i64, pods: usize, pod_requests: Resources) -> Estimate {
    Estimate {
        group: g,
        nodes,
        pods: (0..pods).collect(),
        requests: pod_requests.clone(),
        pod_requests,
        allocatable: Resources::default(),
        price: 0.0,
    }
}

fn ctx<'a>(groups: &'a [NodeGroup], priorities: &'a Priorities) -> Context<'a> {
    Context {
        groups,
        priorities,
        cluster_nodes: 1,
        pricing: PodPricing::default(),
    }
}

fn no_pick(_: usize) -> usize {
    panic!("no tie should be left to break")
}

/// Filters `options` with one expander and no tie-breaking.
fn best(e: Expander, options: &[Estimate], ctx: &Context<'_>) -> Vec<usize> {
    filter(e, options, (0..options.len()).collect(), ctx, &mut no_pick)
}

use outrigger_node_groups::expander::{Expander, choose, filter};

mod expander_mostpods_mostpods_test {
    use super::*;

    // upstream: cluster-autoscaler/expander/mostpods/mostpods_test.go TestMostPods
    #[test]
    fn test_most_pods() {
        let groups = [
            group("eo0", res(1000, GIB, 10), None),
            group("eo1", res(1000, GIB, 10), None),
            group("eo1b", res(1000, GIB, 10), None),
        ];
        let p = Priorities::default();
        let c = ctx(&groups, &p);
        let eo0 = option(0, 1, 0, Resources::default());
        let eo1 = option(1, 1, 1, Resources::default());
        let eo1b = option(2, 1, 1, Resources::default());
        // An option that schedules no pod is still the best of one.
        assert_eq!(
            best(Expander::MostPods, std::slice::from_ref(&eo0), &c),
            [0]
        );
        assert_eq!(
            best(Expander::MostPods, &[eo0.clone(), eo1.clone()], &c),
            [1]
        );
        // Ties are all kept.
        assert_eq!(best(Expander::MostPods, &[eo0, eo1, eo1b], &c), [1, 2]);
    }
}

mod expander_waste_waste_test {
    use super::*;

    // upstream: cluster-autoscaler/expander/waste/waste_test.go TestLeastWaste
    #[test]
    fn test_least_waste() {
        let cpu_per_pod = 500;
        let mem_per_pod = 1000 * MIB;
        let groups = [
            group(
                "balanced",
                res(16 * cpu_per_pod, 16 * mem_per_pod, 100),
                None,
            ),
            group(
                "highmem",
                res(16 * cpu_per_pod, 32 * mem_per_pod, 100),
                None,
            ),
            group("lowcpu", res(8 * cpu_per_pod, 16 * mem_per_pod, 100), None),
        ];
        let p = Priorities::default();
        let c = ctx(&groups, &p);
        // No pods, one option.
        let balanced = option(0, 1, 0, Resources::default());
        assert_eq!(best(Expander::LeastWaste, &[balanced], &c), [0]);
        // One pod, one option.
        let pod = res(cpu_per_pod, mem_per_pod, 1);
        let balanced = option(0, 1, 1, pod.clone());
        assert_eq!(
            best(Expander::LeastWaste, std::slice::from_ref(&balanced), &c),
            [0]
        );
        // Lots of memory wastes more.
        let highmem = option(1, 1, 1, pod.clone());
        assert_eq!(
            best(
                Expander::LeastWaste,
                &[balanced.clone(), highmem.clone()],
                &c
            ),
            [0]
        );
        // Less cpu wastes less.
        let lowcpu = option(2, 1, 1, pod);
        assert_eq!(
            best(Expander::LeastWaste, &[balanced, highmem, lowcpu], &c),
            [2]
        );
    }
}

mod expander_random_random_test {
    use super::*;

    // upstream: cluster-autoscaler/expander/random/random_test.go TestRandomExpander
    #[test]
    fn test_random_expander() {
        let groups = [
            group("eo1a", res(1000, GIB, 10), None),
            group("eo1b", res(1000, GIB, 10), None),
        ];
        let p = Priorities::default();
        let c = ctx(&groups, &p);
        let a = option(0, 1, 0, Resources::default());
        let b = option(1, 1, 0, Resources::default());
        // One option: taken without asking for a random number.
        assert_eq!(
            choose(&[Expander::Random], std::slice::from_ref(&a), &c, no_pick),
            Some(0)
        );
        // Two: either, as the random number says.
        for k in 0..2 {
            let got = choose(&[Expander::Random], &[a.clone(), b.clone()], &c, |n| {
                assert_eq!(n, 2);
                k
            });
            assert_eq!(got, Some(k));
        }
        // None: nothing.
        assert_eq!(choose(&[Expander::Random], &[], &c, no_pick), None);
    }
}

mod expander_price_price_test {
    //! Upstream's test pricing model values pods at 20 per core (p1: 1000m
    //! is 20, p2: 500m is 10, the stabilizing 500m pod 10) and memory at
    //! nothing: a `PodPricing` of 20 per core. Its preferred node provider
    //! is replaced by the cluster size that prefers that node (3 nodes: 2
    //! cores; 7 nodes: 4 cores).
    use super::*;

    fn pricing() -> PodPricing {
        PodPricing {
            per_core: 20.0,
            per_gib: 0.0,
        }
    }

    /// ng1 of n1 (1 core), ng2 of n2 (4 cores), at these node prices.
    fn groups(n1: f64, n2: f64) -> Vec<NodeGroup> {
        vec![
            group("ng1", res(1000, 1000, 100), Some(n1)),
            group("ng2", res(4000, 1000, 100), Some(n2)),
        ]
    }

    fn p1_p2() -> Resources {
        res(1500, 0, 2)
    }

    fn p1() -> Resources {
        res(1000, 0, 1)
    }

    fn run(groups: &[NodeGroup], options: &[Estimate], preferred_cores: i64) -> Vec<usize> {
        let p = Priorities::default();
        let c = Context {
            groups,
            priorities: &p,
            cluster_nodes: if preferred_cores == 2 { 3 } else { 7 },
            pricing: pricing(),
        };
        best(Expander::Price, options, &c)
    }

    // upstream: cluster-autoscaler/expander/price/price_test.go TestPriceExpander "First node group is cheaper."
    #[test]
    fn first_node_group_is_cheaper() {
        let options = [option(0, 2, 2, p1_p2()), option(1, 1, 2, p1_p2())];
        assert_eq!(run(&groups(20.0, 200.0), &options, 2), [0]);
    }

    // upstream: cluster-autoscaler/expander/price/price_test.go TestPriceExpander "First node group is cheaper, however, the second one is preferred."
    #[test]
    fn first_node_group_is_cheaper_however_the_second_one_is_preferred() {
        let options = [option(0, 2, 2, p1_p2()), option(1, 1, 2, p1_p2())];
        assert_eq!(run(&groups(50.0, 200.0), &options, 4), [1]);
    }

    // upstream: cluster-autoscaler/expander/price/price_test.go TestPriceExpander "First node group is cheaper, the second is preferred but there is lots of nodes to be created."
    #[test]
    fn first_node_group_is_cheaper_the_second_is_preferred_but_there_is_lots_of_nodes_to_be_created()
     {
        let options = [option(0, 80, 2, p1_p2()), option(1, 40, 2, p1_p2())];
        assert_eq!(run(&groups(20.0, 200.0), &options, 4), [0]);
    }

    // upstream: cluster-autoscaler/expander/price/price_test.go TestPriceExpander "Second node group is cheaper"
    #[test]
    fn second_node_group_is_cheaper() {
        let options = [option(0, 2, 2, p1_p2()), option(1, 1, 2, p1_p2())];
        assert_eq!(run(&groups(200.0, 100.0), &options, 2), [1]);
    }

    // upstream: cluster-autoscaler/expander/price/price_test.go TestPriceExpander "Both node groups are equally expensive. However 2 accept two pods."
    #[test]
    fn both_node_groups_are_equally_expensive_however_2_accept_two_pods() {
        let options = [option(0, 2, 1, p1()), option(1, 1, 2, p1_p2())];
        assert_eq!(run(&groups(200.0, 200.0), &options, 2), [1]);
    }

    // upstream: cluster-autoscaler/expander/price/price_test.go TestPriceExpander "Errors are expected"
    //
    // Deliberately different: upstream drops an option whose nodes it
    // cannot price, so with no price at all nothing is left (and it
    // refuses to start at all with a cloud that has no pricing, as AWS).
    // Here groups without a price are left out only when another has one;
    // when none has, the price expander keeps them all for the next one.
    #[test]
    fn errors_are_expected() {
        let groups = vec![
            group("ng1", res(1000, 1000, 100), None),
            group("ng2", res(4000, 1000, 100), None),
        ];
        let options = [option(0, 2, 1, p1()), option(1, 1, 2, p1_p2())];
        assert_eq!(run(&groups, &options, 2), [0, 1]);
        // One priced group: the unpriced one is left out.
        let groups = vec![
            group("ng1", res(1000, 1000, 100), None),
            group("ng2", res(4000, 1000, 100), Some(200.0)),
        ];
        assert_eq!(run(&groups, &options, 2), [1]);
    }
}

mod expander_price_preferred_test {
    use outrigger_node_groups::expander::{node_unfitness, preferred_node_cpu_millis};

    // upstream: cluster-autoscaler/expander/price/preferred_test.go TestPreferredNode
    #[test]
    fn test_preferred_node() {
        for (nodes, cores) in [
            (1, 1),
            (3, 2),
            (9, 4),
            (27, 8),
            (81, 16),
            (243, 32),
            (500, 32),
        ] {
            assert_eq!(
                preferred_node_cpu_millis(nodes),
                cores * 1000,
                "{nodes} nodes"
            );
        }
    }

    // upstream: cluster-autoscaler/expander/price/preferred_test.go TestSimpleNodeUnfitness
    #[test]
    fn test_simple_node_unfitness() {
        assert_eq!(node_unfitness(1000, 2000), 2.0);
        assert_eq!(node_unfitness(2000, 1000), 2.0);
        assert_eq!(node_unfitness(1000, 1000), 1.0);
    }
}

mod expander_priority_priority_test {
    //! The ConfigMap's `priorities` texts are upstream's, byte for byte
    //! (double-quoted YAML scalars with `\\.` escapes, trailing blanks).
    use super::*;

    const CONFIG: &str = "
5:
  - \".*t2\\\\.micro.*\"
10: 
  - \".*t2\\\\.large.*\"
  - \".*t3\\\\.large.*\"
50: 
  - \".*m4\\\\.4xlarge.*\"
";
    const ONE_ENTRY_CONFIG: &str = "
10: 
  - \".*t2\\\\.large.*\"
";
    const WILDCARD_MATCH_CONFIG: &str = "
5:
  - \".*\"
10:
  - \".t2\\\\.large.*\"
";

    const T2_MICRO: usize = 0;
    const T2_LARGE: usize = 1;
    const T3_LARGE: usize = 2;
    const M4_4XLARGE: usize = 3;

    fn groups() -> Vec<NodeGroup> {
        [
            "my-asg.t2.micro",
            "my-asg.t2.large",
            "my-asg.t3.large",
            "my-asg.m4.4xlarge",
        ]
        .iter()
        .map(|id| group(id, res(1000, GIB, 10), None))
        .collect()
    }

    /// The priority filter over options for these groups; the kept ones
    /// as group indices.
    fn run(config: &str, of: &[usize]) -> Vec<usize> {
        let p = Priorities::parse(config).unwrap();
        run_with(&p, of)
    }

    fn run_with(p: &Priorities, of: &[usize]) -> Vec<usize> {
        let g = groups();
        let options: Vec<Estimate> = of
            .iter()
            .map(|i| option(*i, 1, 1, Resources::default()))
            .collect();
        best(Expander::Priority, &options, &ctx(&g, p))
            .into_iter()
            .map(|i| options[i].group)
            .collect()
    }

    // upstream: cluster-autoscaler/expander/priority/priority_test.go TestPriorityExpanderCorrecltyFiltersSingleMatchingOptionOutOfOne
    #[test]
    fn test_priority_expander_correclty_filters_single_matching_option_out_of_one() {
        assert_eq!(run(CONFIG, &[T2_LARGE]), [T2_LARGE]);
    }

    // upstream: cluster-autoscaler/expander/priority/priority_test.go TestPriorityExpanderCorrecltyFiltersSingleMatchingOptionOutOfMany
    #[test]
    fn test_priority_expander_correclty_filters_single_matching_option_out_of_many() {
        assert_eq!(run(CONFIG, &[T2_LARGE, M4_4XLARGE]), [M4_4XLARGE]);
    }

    // upstream: cluster-autoscaler/expander/priority/priority_test.go TestPriorityExpanderFiltersToHigherPriorityMatch
    //
    // `.t2\.large.*` matches inside `my-asg.t2.large`: the regexes are not
    // anchored.
    #[test]
    fn test_priority_expander_filters_to_higher_priority_match() {
        assert_eq!(
            run(WILDCARD_MATCH_CONFIG, &[T2_LARGE, T2_MICRO]),
            [T2_LARGE]
        );
    }

    // upstream: cluster-autoscaler/expander/priority/priority_test.go TestPriorityExpanderCorrecltyFiltersTwoMatchingOptionsOutOfMany
    #[test]
    fn test_priority_expander_correclty_filters_two_matching_options_out_of_many() {
        assert_eq!(
            run(CONFIG, &[T2_LARGE, T3_LARGE, T2_MICRO]),
            [T2_LARGE, T3_LARGE]
        );
    }

    // upstream: cluster-autoscaler/expander/priority/priority_test.go TestPriorityExpanderCorrecltyFallsBackToAllWhenNoMatches
    #[test]
    fn test_priority_expander_correclty_falls_back_to_all_when_no_matches() {
        assert_eq!(run(CONFIG, &[T2_LARGE, T3_LARGE]), [T2_LARGE, T3_LARGE]);
        // And with no group matched at all, every option is kept.
        let not_matching = "\n5:\n  - \".*t\\\\.micro.*\"\n10: \n  - \".*t\\\\.large.*\"\n";
        assert_eq!(
            run(not_matching, &[T2_LARGE, T3_LARGE]),
            [T2_LARGE, T3_LARGE]
        );
    }

    // upstream: cluster-autoscaler/expander/priority/priority_test.go TestPriorityExpanderCorrecltyHandlesConfigUpdate
    //
    // The ConfigMap is read afresh on every decision: a new text is a new
    // `Priorities`. The groups no priority matches are the ones upstream
    // warns of (PriorityConfigMapNotMatchedGroup).
    #[test]
    fn test_priority_expander_correclty_handles_config_update() {
        let all = [T2_LARGE, T3_LARGE, M4_4XLARGE];
        let p = Priorities::parse(ONE_ENTRY_CONFIG).unwrap();
        assert_eq!(run_with(&p, &all), [T2_LARGE]);
        let g = groups();
        let ids = all.iter().map(|i| g[*i].id.as_str());
        assert_eq!(p.unmatched(ids), ["my-asg.t3.large", "my-asg.m4.4xlarge"]);
        assert_eq!(
            outrigger_node_groups::expander::not_matched_message("my-asg.t3.large"),
            "Priority expander: node group my-asg.t3.large not found in priority expander configuration. The group won't be used."
        );
        assert_eq!(run(CONFIG, &all), [M4_4XLARGE]);
    }

    // upstream: cluster-autoscaler/expander/priority/priority_test.go TestPriorityExpanderCorrecltySkipsBadChangeConfig
    //
    // An empty configuration is an error (worded as upstream's), and an
    // invalid ConfigMap filters nothing.
    #[test]
    fn test_priority_expander_correclty_skips_bad_change_config() {
        assert_eq!(
            Priorities::parse("").unwrap_err(),
            "priority configuration in cluster-autoscaler-priority-expander configmap is empty; please provide valid configuration"
        );
        let all = [T2_LARGE, T3_LARGE, M4_4XLARGE];
        assert_eq!(run_with(&Priorities::default(), &all), all);
        // Nor does text that is not YAML for a map of integers to lists.
        let e = Priorities::parse("10:\n  - \"a\\.b\"\n").unwrap_err();
        assert!(
            e.starts_with("Can't parse YAML with priorities in the configmap"),
            "{e}"
        );
    }
}

mod expander_leastnodes_leastnodes_test {
    use super::*;

    /// The least-nodes filter over options of these node counts; the kept
    /// ones as indices.
    fn run(counts: &[i64]) -> Vec<usize> {
        let g: Vec<NodeGroup> = (0..counts.len())
            .map(|i| group(&format!("EO{i}"), res(1000, GIB, 10), None))
            .collect();
        let options: Vec<Estimate> = counts
            .iter()
            .enumerate()
            .map(|(i, n)| option(i, *n, 1, Resources::default()))
            .collect();
        let p = Priorities::default();
        best(Expander::LeastNodes, &options, &ctx(&g, &p))
    }

    // upstream: cluster-autoscaler/expander/leastnodes/leastnodes_test.go TestLeastNodes "no options"
    #[test]
    fn no_options() {
        assert!(run(&[]).is_empty());
    }

    // upstream: cluster-autoscaler/expander/leastnodes/leastnodes_test.go TestLeastNodes "no valid options"
    #[test]
    fn no_valid_options() {
        assert!(run(&[0]).is_empty());
    }

    // upstream: cluster-autoscaler/expander/leastnodes/leastnodes_test.go TestLeastNodes "1 valid option"
    #[test]
    fn one_valid_option() {
        assert_eq!(run(&[2]), [0]);
    }

    // upstream: cluster-autoscaler/expander/leastnodes/leastnodes_test.go TestLeastNodes "2 valid options, not equal"
    #[test]
    fn two_valid_options_not_equal() {
        assert_eq!(run(&[2, 1]), [1]);
    }

    // upstream: cluster-autoscaler/expander/leastnodes/leastnodes_test.go TestLeastNodes "3 valid options, 2 equal"
    #[test]
    fn three_valid_options_2_equal() {
        assert_eq!(run(&[6, 2, 2]), [1, 2]);
    }

    // upstream: cluster-autoscaler/expander/leastnodes/leastnodes_test.go TestLeastNodes "3 valid options, all equal"
    #[test]
    fn three_valid_options_all_equal() {
        assert_eq!(run(&[8, 8, 8]), [0, 1, 2]);
    }

    // upstream: cluster-autoscaler/expander/leastnodes/leastnodes_test.go TestLeastNodes "6 valid options, 1 invalid option, 3 equal"
    #[test]
    fn six_valid_options_1_invalid_option_3_equal() {
        assert_eq!(run(&[23, 0, 5, 8, 5, 5, 22]), [2, 4, 5]);
    }
}

mod expander_factory_chain_test {
    //! Upstream's chain test uses made-up filters (options whose debug
    //! string contains a letter) and a made-up fallback. Here the filters
    //! are real expanders whose choice follows the same letters (an option
    //! "with a" schedules more pods, one "with b" needs fewer nodes), and
    //! the fallback is always the random tie-break.
    use super::*;

    /// An option per name: 2 pods with an `a`, else 1; 1 node with a `b`,
    /// else 2.
    fn options(names: &[&str]) -> (Vec<NodeGroup>, Vec<Estimate>) {
        let groups = names
            .iter()
            .map(|n| group(n, res(1000, GIB, 10), None))
            .collect();
        let options = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let pods = if n.contains('a') { 2 } else { 1 };
                let nodes = if n.contains('b') { 1 } else { 2 };
                option(i, nodes, pods, Resources::default())
            })
            .collect();
        (groups, options)
    }

    // upstream: cluster-autoscaler/expander/factory/chain_test.go TestChainStrategy_BestOption "selects with no filters"
    #[test]
    fn selects_with_no_filters() {
        let (g, o) = options(&["b", "a"]);
        let p = Priorities::default();
        // The fallback alone decides, between both.
        let got = choose(&[], &o, &ctx(&g, &p), |n| {
            assert_eq!(n, 2);
            1
        });
        assert_eq!(got, Some(1));
    }

    // upstream: cluster-autoscaler/expander/factory/chain_test.go TestChainStrategy_BestOption "filters with one filter"
    #[test]
    fn filters_with_one_filter() {
        let (g, o) = options(&["ab", "b"]);
        let p = Priorities::default();
        assert_eq!(
            choose(&[Expander::MostPods], &o, &ctx(&g, &p), no_pick),
            Some(0)
        );
    }

    // upstream: cluster-autoscaler/expander/factory/chain_test.go TestChainStrategy_BestOption "filters with multiple filters"
    #[test]
    fn filters_with_multiple_filters() {
        let (g, o) = options(&["xab", "xa", "x"]);
        let p = Priorities::default();
        let chain = [Expander::MostPods, Expander::LeastNodes];
        assert_eq!(choose(&chain, &o, &ctx(&g, &p), no_pick), Some(0));
    }

    // upstream: cluster-autoscaler/expander/factory/chain_test.go TestChainStrategy_BestOption "selects from multiple after filters"
    #[test]
    fn selects_from_multiple_after_filters() {
        // Three options alike for least-waste: it keeps all three and the
        // fallback picks among them.
        let (g, _) = options(&["xc", "xaa", "xab"]);
        let o: Vec<Estimate> = (0..3)
            .map(|i| option(i, 1, 1, Resources::default()))
            .collect();
        let p = Priorities::default();
        let got = choose(&[Expander::LeastWaste], &o, &ctx(&g, &p), |n| {
            assert_eq!(n, 3);
            1
        });
        assert_eq!(got, Some(1));
    }

    // upstream: cluster-autoscaler/expander/factory/chain_test.go TestChainStrategy_BestOption "short circuits"
    #[test]
    fn short_circuits() {
        let (g, o) = options(&["a"]);
        let p = Priorities::default();
        // The first filter leaves one option: taken, the second filter and
        // the fallback not asked (least-nodes would keep it anyway).
        let chain = [Expander::MostPods, Expander::LeastNodes];
        assert_eq!(choose(&chain, &o, &ctx(&g, &p), no_pick), Some(0));
    }

    // upstream: cluster-autoscaler/expander/factory/expander_factory.go Build (the chain's rules)
    #[test]
    fn a_chain_names_each_expander_once_and_nothing_after_random() {
        assert!(Expander::parse_list("most-pods,least-waste,most-pods").is_err());
        assert!(Expander::parse_list("random,most-pods").is_err());
        assert!(Expander::parse_list("grpc").is_err());
        assert_eq!(
            Expander::parse_list("priority,least-waste,random").unwrap(),
            [Expander::Priority, Expander::LeastWaste, Expander::Random]
        );
    }
}

mod estimator_binpacking_estimator_test {
    //! Upstream's estimator packs pods onto new nodes of a template only;
    //! pods that fit existing nodes were filtered out before it runs. Here
    //! `estimate` does both: the test's existing node (in another zone, to
    //! bring topology spread in) is filled with a pod of another app so
    //! that the pods go to new nodes, as upstream's estimator sees them,
    //! except where upstream's estimator itself uses it. The estimator's
    //! node limit (`--max-nodes-per-scaleup`) is the group's room here.
    use std::collections::BTreeSet;

    use outrigger_node_groups::scaleup::{self, Input, Limits, Totals};
    use outrigger_scheduling::model::{
        HostPort, LABEL_HOSTNAME, LABEL_ZONE, LabelSelector, Node, Pod, TopologySpread,
    };

    use super::*;

    fn labels(name: &str, zone: &str) -> Labels {
        Labels::from([
            (LABEL_HOSTNAME.to_string(), name.to_string()),
            (LABEL_ZONE.to_string(), zone.to_string()),
        ])
    }

    /// Upstream's estimatee: `cpu` millicores, `mem` bytes.
    fn estimatee(i: usize, cpu: i64, mem: i64) -> Pod {
        let mut p = Pod::new("universe", &format!("estimatee-{i}"), res(cpu, mem, 1));
        p.labels.insert("app".into(), "estimatee".into());
        p
    }

    fn pods(n: usize, cpu: i64, mem: i64) -> Vec<Pod> {
        (0..n).map(|i| estimatee(i, cpu, mem)).collect()
    }

    fn with_max_skew(mut pods: Vec<Pod>, max_skew: u32, key: &str) -> Vec<Pod> {
        for p in &mut pods {
            p.spread.push(TopologySpread {
                max_skew,
                topology_key: key.into(),
                required: true,
                selector: LabelSelector::labels(&[("app", "estimatee")]),
            });
        }
        pods
    }

    struct Estimated {
        nodes: i64,
        /// The pods on new nodes (indices).
        pods: Vec<usize>,
        /// The pods the existing node takes.
        existing: Vec<usize>,
    }

    /// New nodes of a template (`millicores`, `memory` MiB, 10 pods, in
    /// zone-mars) for `pods`, at most `max_nodes` (0: no limit), beside
    /// "oldnode" (100m, 100 MiB, 10 pods, in zone-jupiter), full or not.
    fn estimate(
        millicores: i64,
        memory: i64,
        max_nodes: i64,
        pods: &[Pod],
        old_full: bool,
    ) -> Estimated {
        let mut old = Node {
            name: "oldnode".into(),
            labels: labels("oldnode", "zone-jupiter"),
            allocatable: res(100, 100 * MIB, 10),
            ..Default::default()
        };
        if old_full {
            old.pods.push(Pod::new("other", "filler", res(100, 0, 1)));
        }
        let capacity = res(millicores, memory * MIB, 10);
        let template = Template::from_node(
            Some("template"),
            &labels("template", "zone-mars"),
            &[],
            &capacity,
            &capacity,
        );
        let groups = vec![NodeGroup {
            id: "ng".into(),
            min: 0,
            max: if max_nodes == 0 { 10_000 } else { max_nodes },
            target: 0,
            instances: vec![],
            template: Some(template),
        }];
        let plan = scaleup::estimate(&Input {
            pods,
            nodes: &[old],
            groups: &groups,
            backoff: &BTreeSet::new(),
            daemonsets: &[],
            limits: Limits::default(),
            totals: Totals::default(),
        });
        let o = plan.options.first();
        Estimated {
            nodes: o.map_or(0, |o| o.nodes),
            pods: o.map(|o| o.pods.clone()).unwrap_or_default(),
            existing: plan.fits_existing,
        }
    }

    // upstream: cluster-autoscaler/estimator/binpacking_estimator_test.go TestBinpackingEstimate "simple resource-based binpacking"
    #[test]
    fn simple_resource_based_binpacking() {
        let e = estimate(350 * 3 - 50, 2 * 1000, 0, &pods(10, 350, 1000), true);
        assert_eq!((e.nodes, e.pods.len()), (5, 10));
    }

    // upstream: cluster-autoscaler/estimator/binpacking_estimator_test.go TestBinpackingEstimate "pods-per-node bound binpacking"
    #[test]
    fn pods_per_node_bound_binpacking() {
        let e = estimate(10000, 20000, 0, &pods(20, 10, 100), true);
        assert_eq!((e.nodes, e.pods.len()), (2, 20));
    }

    // upstream: cluster-autoscaler/estimator/binpacking_estimator_test.go TestBinpackingEstimate "hostport conflict forces pod-per-node"
    #[test]
    fn hostport_conflict_forces_pod_per_node() {
        let mut ps = pods(8, 200, 1000);
        for p in &mut ps {
            p.host_ports.push(HostPort {
                port: 5555,
                protocol: "TCP".into(),
                ip: String::new(),
            });
        }
        let e = estimate(1000, 5000, 0, &ps, true);
        assert_eq!((e.nodes, e.pods.len()), (8, 8));
    }

    // upstream: cluster-autoscaler/estimator/binpacking_estimator_test.go TestBinpackingEstimate "limiter cuts binpacking"
    #[test]
    fn limiter_cuts_binpacking() {
        let e = estimate(1000, 5000, 5, &pods(20, 500, 1000), true);
        assert_eq!((e.nodes, e.pods.len()), (5, 10));
    }

    // upstream: cluster-autoscaler/estimator/binpacking_estimator_test.go TestBinpackingEstimate "decreasing ordered pods are processed first"
    #[test]
    fn decreasing_ordered_pods_are_processed_first() {
        // The small pods come first in the input; the large ones take the
        // five nodes.
        let mut ps = pods(10, 50, 1000);
        ps.extend((10..20).map(|i| estimatee(i, 500, 1000)));
        let e = estimate(1000, 5000, 5, &ps, true);
        assert_eq!(e.nodes, 5);
        assert_eq!(e.pods, (10..20).collect::<Vec<_>>());
    }

    // upstream: cluster-autoscaler/estimator/binpacking_estimator_test.go TestBinpackingEstimate "hostname topology spreading with maxSkew=2 forces 2 pods/node"
    #[test]
    fn hostname_topology_spreading_with_max_skew_2_forces_2_pods_node() {
        let ps = with_max_skew(pods(8, 200, 200), 2, LABEL_HOSTNAME);
        let e = estimate(1000, 5000, 0, &ps, true);
        assert_eq!((e.nodes, e.pods.len()), (4, 8));
    }

    // upstream: cluster-autoscaler/estimator/binpacking_estimator_test.go TestBinpackingEstimate "zonal topology spreading with maxSkew=2 only allows 2 pods to schedule"
    #[test]
    fn zonal_topology_spreading_with_max_skew_2_only_allows_2_pods_to_schedule() {
        let ps = with_max_skew(pods(8, 20, 100), 2, LABEL_ZONE);
        let e = estimate(1000, 5000, 0, &ps, true);
        assert_eq!((e.nodes, e.pods.len()), (1, 2));
    }

    // upstream: cluster-autoscaler/estimator/binpacking_estimator_test.go TestBinpackingEstimate "hostname topology spreading with maxSkew=1 with a large scaleup handles scheduling pods retroactively"
    //
    // Differs, pinned: upstream's estimator (minDomains 3) packs the 12
    // pods onto 3 new nodes, moving pods to the old node whenever the last
    // new node is ahead. The shared solver does not model minDomains and,
    // on the hostname key, takes the least-loaded domain as a new empty
    // node, so each new node takes one pod: 1 pod on the old node, 11 new
    // nodes. It never plans what kube-scheduler would refuse; it may plan
    // more nodes than needed for hostname spread (see the report).
    #[test]
    fn hostname_topology_spreading_with_max_skew_1_with_a_large_scaleup_handles_scheduling_pods_retroactively()
     {
        let ps = with_max_skew(pods(12, 20, 100), 1, LABEL_HOSTNAME);
        let e = estimate(1000, 5000, 0, &ps, false);
        assert_eq!(e.existing.len() + e.pods.len(), 12);
        assert_eq!((e.nodes, e.pods.len(), e.existing.len()), (11, 11, 1));
    }
}

/// Upstream's `BuildTestNode`: no label, `cpu` millicores, `mem` bytes,
/// 100 pods; allocatable as capacity.
fn test_node(cpu: i64, mem: i64) -> outrigger_node_groups::balance::Shape {
    let r = res(cpu, mem, 100);
    outrigger_node_groups::balance::Shape {
        labels: Labels::new(),
        capacity: r.clone(),
        allocatable: r,
        requested: Resources::default(),
    }
}

mod processors_nodegroupset_compare_nodegroups_test {
    use outrigger_node_groups::balance::{Comparator, Ratios, Shape};
    use outrigger_scheduling::model::{LABEL_HOSTNAME, LABEL_ZONE};

    use super::*;

    fn generic() -> Comparator {
        Comparator::generic(&[], Ratios::default())
    }

    /// With pods on it: their requests count as requested.
    fn with_pod(mut s: Shape, cpu: i64, mem: i64) -> Shape {
        s.requested.add(&res(cpu, mem, 1));
        s
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/compare_nodegroups_test.go TestIdenticalNodesSimilar
    #[test]
    fn test_identical_nodes_similar() {
        assert!(generic().similar(&test_node(1000, 2000), &test_node(1000, 2000)));
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/compare_nodegroups_test.go TestNodesSimilarVariousRequirements
    #[test]
    fn test_nodes_similar_various_requirements() {
        let c = generic();
        let n1 = test_node(1000, 2000);
        // Different cpu capacity.
        let mut n2 = test_node(1000, 2000);
        n2.capacity.cpu_millis = 1001;
        assert!(!c.similar(&n1, &n2));
        // Same cpu capacity, slightly different allocatable.
        let mut n3 = test_node(1000, 2000);
        n3.allocatable.cpu_millis = 999;
        assert!(c.similar(&n1, &n3));
        // Same cpu capacity, significantly different allocatable.
        let mut n4 = test_node(1000, 2000);
        n4.allocatable.cpu_millis = 500;
        assert!(!c.similar(&n1, &n4));
        // One with an extended resource (a GPU), one without.
        let mut n5 = test_node(1000, 2000);
        n5.capacity.extended.insert("nvidia.com/gpu".into(), 1);
        n5.allocatable.extended.insert("nvidia.com/gpu".into(), 1);
        assert!(!c.similar(&n1, &n5));
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/compare_nodegroups_test.go TestNodesSimilarVariousRequirementsAndPods
    #[test]
    fn test_nodes_similar_various_requirements_and_pods() {
        let c = generic();
        let n1 = with_pod(test_node(1000, 2000), 500, 1000);
        // Different allocatable, the same free.
        let mut n2 = test_node(1000, 2000);
        n2.allocatable.cpu_millis = 500;
        n2.allocatable.memory_bytes = 1000;
        assert!(!c.similar(&n1, &n2));
        // The same pod requests.
        let n3 = with_pod(test_node(1000, 2000), 500, 1000);
        assert!(c.similar(&n1, &n3));
        // Similar allocatable, similar pods.
        let mut n4 = with_pod(test_node(1000, 2000), 501, 1001);
        n4.allocatable.cpu_millis = 999;
        assert!(c.similar(&n1, &n4));
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/compare_nodegroups_test.go TestNodesSimilarVariousMemoryRequirements
    #[test]
    fn test_nodes_similar_various_memory_requirements() {
        let c = generic();
        let n1 = test_node(1000, 1000);
        // Memory capacity within 1.5%.
        let mut n2 = test_node(1000, 1000);
        n2.capacity.memory_bytes = 1000 - 15 + 1;
        assert!(c.similar(&n1, &n2));
        // Beyond.
        let mut n3 = test_node(1000, 1000);
        n3.capacity.memory_bytes = 1000 - 15 - 1;
        assert!(!c.similar(&n1, &n3));
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/compare_nodegroups_test.go TestNodesSimilarVariousLargeMemoryRequirementsM5XLarge
    #[test]
    fn test_nodes_similar_various_large_memory_requirements_m5_x_large() {
        let c = generic();
        let ki = 1024;
        let n1 = test_node(1000, 16_116_152 * ki);
        // Another m5.xlarge, in another zone.
        assert!(c.similar(&n1, &test_node(1000, 15_944_120 * ki)));
        // 2% more.
        assert!(!c.similar(&n1, &test_node(1000, 16_438_475 * ki)));
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/compare_nodegroups_test.go TestNodesSimilarVariousLargeMemoryRequirementsM516XLarge
    #[test]
    fn test_nodes_similar_various_large_memory_requirements_m5_16_x_large() {
        let c = generic();
        let ki = 1024;
        let n1 = test_node(1000, 259_970_052 * ki);
        assert!(c.similar(&n1, &test_node(1000, 257_217_528 * ki)));
        assert!(!c.similar(&n1, &test_node(1000, 265_169_453 * ki)));
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/compare_nodegroups_test.go TestNodesSimilarVariousLabels
    #[test]
    fn test_nodes_similar_various_labels() {
        let c = Comparator::generic(&["example.com/ready"], Ratios::default());
        let mut n1 = test_node(1000, 2000);
        n1.labels.insert("test-label".into(), "test-value".into());
        n1.labels
            .insert("character".into(), "winnie the pooh".into());
        let mut n2 = test_node(1000, 2000);
        n2.labels.insert("test-label".into(), "test-value".into());
        // A label missing.
        assert!(!c.similar(&n1, &n2));
        n2.labels
            .insert("character".into(), "winnie the pooh".into());
        assert!(c.similar(&n1, &n2));
        // Hostnames do not matter.
        n1.labels.insert(LABEL_HOSTNAME.into(), "node1".into());
        n2.labels.insert(LABEL_HOSTNAME.into(), "node2".into());
        assert!(c.similar(&n1, &n2));
        // Nor zones (the deprecated key; and the current one).
        n1.labels.insert(
            "failure-domain.beta.kubernetes.io/zone".into(),
            "mars-olympus-mons1-b".into(),
        );
        n2.labels.insert(
            "failure-domain.beta.kubernetes.io/zone".into(),
            "us-houston1-a".into(),
        );
        assert!(c.similar(&n1, &n2));
        n1.labels.insert(LABEL_ZONE.into(), "z1".into());
        n2.labels.insert(LABEL_ZONE.into(), "z2".into());
        assert!(c.similar(&n1, &n2));
        // Nor fluentd's marker, different or on one only.
        n1.labels
            .insert("beta.kubernetes.io/fluentd-ds-ready".into(), "true".into());
        n2.labels
            .insert("beta.kubernetes.io/fluentd-ds-ready".into(), "false".into());
        assert!(c.similar(&n1, &n2));
        n2.labels.remove("beta.kubernetes.io/fluentd-ds-ready");
        assert!(c.similar(&n1, &n2));
        // Nor a label given to ignore.
        n1.labels.insert("example.com/ready".into(), "true".into());
        n2.labels.insert("example.com/ready".into(), "false".into());
        assert!(c.similar(&n1, &n2));
    }
}

mod processors_nodegroupset_aws_nodegroups_test {
    use outrigger_node_groups::balance::{Comparator, Ratios, Shape, find_similar};

    use super::*;

    /// Upstream's table shares its two nodes across cases (labels pile
    /// up); each case here starts from what the previous ones left.
    fn case(n1: &mut Shape, n2: &mut Shape, label: &str, v1: &str, v2: &str, remove_one: bool) {
        n1.labels.insert(label.into(), v1.into());
        n2.labels.insert(label.into(), v2.into());
        if remove_one {
            n2.labels.remove(label);
        }
        assert!(
            Comparator::aws(&[], Ratios::EXACT).similar(n1, n2),
            "{label} {v1:?} {v2:?} {remove_one}"
        );
    }

    /// The table's cases up to and including `upto` (0-based).
    fn table(upto: usize) {
        let mut n1 = test_node(1000, 2000);
        let mut n2 = test_node(1000, 2000);
        let labels = [
            "alpha.eksctl.io/instance-id",
            "alpha.eksctl.io/nodegroup-name",
            "eks.amazonaws.com/nodegroup",
            "k8s.amazonaws.com/eniConfig",
            "lifecycle",
            "topology.ebs.csi.aws.com/zone",
            "topology.k8s.aws/zone-id",
        ];
        let mut i = 0;
        for label in labels {
            for (v1, v2, remove_one) in
                [("", "", false), ("foo", "bar", false), ("foo", "bar", true)]
            {
                if i > upto {
                    return;
                }
                case(&mut n1, &mut n2, label, v1, v2, remove_one);
                i += 1;
            }
        }
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "alpha.eksctl.io/instance-id empty value"
    #[test]
    fn alpha_eksctl_io_instance_id_empty_value() {
        table(0);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "alpha.eksctl.io/instance-id different values"
    #[test]
    fn alpha_eksctl_io_instance_id_different_values() {
        table(1);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "alpha.eksctl.io/instance-id one node labeled"
    #[test]
    fn alpha_eksctl_io_instance_id_one_node_labeled() {
        table(2);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "alpha.eksctl.io/nodegroup-name empty value"
    #[test]
    fn alpha_eksctl_io_nodegroup_name_empty_value() {
        table(3);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "alpha.eksctl.io/nodegroup-name different values"
    #[test]
    fn alpha_eksctl_io_nodegroup_name_different_values() {
        table(4);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "alpha.eksctl.io/nodegroup-name one node labeled"
    #[test]
    fn alpha_eksctl_io_nodegroup_name_one_node_labeled() {
        table(5);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "eks.amazonaws.com/nodegroup empty value"
    #[test]
    fn eks_amazonaws_com_nodegroup_empty_value() {
        table(6);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "eks.amazonaws.com/nodegroup different values"
    #[test]
    fn eks_amazonaws_com_nodegroup_different_values() {
        table(7);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "eks.amazonaws.com/nodegroup one node labeled"
    #[test]
    fn eks_amazonaws_com_nodegroup_one_node_labeled() {
        table(8);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "k8s.amazonaws.com/eniConfig empty value"
    #[test]
    fn k8s_amazonaws_com_eni_config_empty_value() {
        table(9);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "k8s.amazonaws.com/eniConfig different values"
    #[test]
    fn k8s_amazonaws_com_eni_config_different_values() {
        table(10);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "k8s.amazonaws.com/eniConfig one node labeled"
    #[test]
    fn k8s_amazonaws_com_eni_config_one_node_labeled() {
        table(11);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "lifecycle empty value"
    #[test]
    fn lifecycle_empty_value() {
        table(12);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "lifecycle different values"
    #[test]
    fn lifecycle_different_values() {
        table(13);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "lifecycle one node labeled"
    #[test]
    fn lifecycle_one_node_labeled() {
        table(14);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "topology.ebs.csi.aws.com/zone empty value"
    #[test]
    fn topology_ebs_csi_aws_com_zone_empty_value() {
        table(15);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "topology.ebs.csi.aws.com/zone different values"
    #[test]
    fn topology_ebs_csi_aws_com_zone_different_values() {
        table(16);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "topology.ebs.csi.aws.com/zone one node labeled"
    #[test]
    fn topology_ebs_csi_aws_com_zone_one_node_labeled() {
        table(17);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "topology.k8s.aws/zone-id empty value"
    #[test]
    fn topology_k8s_aws_zone_id_empty_value() {
        table(18);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "topology.k8s.aws/zone-id different values"
    #[test]
    fn topology_k8s_aws_zone_id_different_values() {
        table(19);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestIsAwsNodeInfoSimilar "topology.k8s.aws/zone-id one node labeled"
    #[test]
    fn topology_k8s_aws_zone_id_one_node_labeled() {
        table(20);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/aws_nodegroups_test.go TestFindSimilarNodeGroupsAwsBasic
    #[test]
    fn test_find_similar_node_groups_aws_basic() {
        super::processors_nodegroupset_balancing_processor_test::basic_similar_node_groups_test(
            &Comparator::aws(&[], Ratios::EXACT),
            &[
                test_node(1000, 1000),
                test_node(1000, 1000),
                test_node(2000, 2000),
            ],
        );
        // And the labels the generic comparator compares are told apart
        // by it, not by AWS's.
        let mut a = test_node(1000, 1000);
        let mut b = test_node(1000, 1000);
        a.labels
            .insert("eks.amazonaws.com/nodegroup".into(), "ng1".into());
        b.labels
            .insert("eks.amazonaws.com/nodegroup".into(), "ng2".into());
        let shapes = [Some(a), Some(b)];
        assert_eq!(
            find_similar(&Comparator::aws(&[], Ratios::EXACT), &shapes, 0),
            [1]
        );
        assert!(find_similar(&Comparator::generic(&[], Ratios::EXACT), &shapes, 0).is_empty());
    }
}

mod processors_nodegroupset_balancing_processor_test {
    use outrigger_node_groups::balance::{
        Comparator, Ratios, ScaleUpInfo, Shape, balance_scale_up, find_similar,
    };

    use super::*;

    /// ng1 and ng2 alike, ng3 twice as big: each finds the other of the
    /// first two, ng3 none.
    pub(super) fn basic_similar_node_groups_test(c: &Comparator, nodes: &[Shape; 3]) {
        let shapes: Vec<Option<Shape>> = nodes.iter().cloned().map(Some).collect();
        assert_eq!(find_similar(c, &shapes, 0), [1]);
        assert_eq!(find_similar(c, &shapes, 1), [0]);
        assert!(find_similar(c, &shapes, 2).is_empty());
    }

    fn basic() -> [Shape; 3] {
        [
            test_node(1000, 1000),
            test_node(1000, 1000),
            test_node(2000, 2000),
        ]
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/balancing_processor_test.go TestFindSimilarNodeGroups
    #[test]
    fn test_find_similar_node_groups() {
        basic_similar_node_groups_test(&Comparator::generic(&[], Ratios::EXACT), &basic());
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/balancing_processor_test.go TestFindSimilarNodeGroupsCustomLabels
    #[test]
    fn test_find_similar_node_groups_custom_labels() {
        let mut nodes = basic();
        nodes[0]
            .labels
            .insert("example.com/ready".into(), "true".into());
        nodes[1]
            .labels
            .insert("example.com/ready".into(), "false".into());
        basic_similar_node_groups_test(
            &Comparator::generic(&["example.com/ready"], Ratios::EXACT),
            &nodes,
        );
        // Without ignoring it, the label tells them apart.
        let shapes: Vec<Option<Shape>> = nodes.iter().cloned().map(Some).collect();
        assert!(find_similar(&Comparator::generic(&[], Ratios::EXACT), &shapes, 0).is_empty());
    }

    /// New sizes by group index.
    fn sizes(infos: &[ScaleUpInfo]) -> BTreeMap<usize, i64> {
        infos.iter().map(|i| (i.group, i.new)).collect()
    }

    use std::collections::BTreeMap;

    // upstream: cluster-autoscaler/processors/nodegroupset/balancing_processor_test.go TestBalanceSingleGroup
    #[test]
    fn test_balance_single_group() {
        let ng1 = [(0, 1, 10)];
        // One node.
        let out = balance_scale_up(&ng1, 1).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].new, 2);
        // Several.
        let out = balance_scale_up(&ng1, 4).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].new, 5);
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/balancing_processor_test.go TestBalanceUnderMaxSize
    #[test]
    fn test_balance_under_max_size() {
        let groups = [(1, 1, 10), (2, 3, 10), (3, 5, 10), (4, 5, 10)];
        // A single node.
        assert_eq!(
            sizes(&balance_scale_up(&groups, 1).unwrap()),
            BTreeMap::from([(1, 2)])
        );
        // Several nodes to a single group.
        assert_eq!(
            sizes(&balance_scale_up(&groups, 2).unwrap()),
            BTreeMap::from([(1, 3)])
        );
        // Groups of different sizes, divisible.
        assert_eq!(
            sizes(&balance_scale_up(&groups, 4).unwrap()),
            BTreeMap::from([(1, 4), (2, 4)])
        );
        // Non-divisible: 4 and 5, whichever way.
        let out = sizes(&balance_scale_up(&groups, 5).unwrap());
        assert_eq!(out.len(), 2);
        assert_eq!(out[&1] + out[&2], 9);
        assert!(out[&1] == 4 || out[&1] == 5);
        // Every group, divisible.
        assert_eq!(
            sizes(&balance_scale_up(&groups, 10).unwrap()),
            BTreeMap::from([(1, 6), (2, 6), (3, 6), (4, 6)])
        );
    }

    // upstream: cluster-autoscaler/processors/nodegroupset/balancing_processor_test.go TestBalanceHittingMaxSize
    #[test]
    fn test_balance_hitting_max_size() {
        // (index, size, max)
        let ng1 = (1, 1, 1);
        let ng2 = (2, 1, 3);
        let ng3 = (3, 3, 10);
        let ng4 = (4, 5, 7);
        let ng5 = (5, 6, 3);
        // Just one maxed-out group.
        assert!(balance_scale_up(&[ng1], 1).unwrap().is_empty());
        // The smallest group maxed out, one node.
        assert_eq!(
            sizes(&balance_scale_up(&[ng1, ng2], 1).unwrap()),
            BTreeMap::from([(2, 2)])
        );
        // The smallest group maxed out, too many nodes: capped.
        assert_eq!(
            sizes(&balance_scale_up(&[ng1, ng2], 5).unwrap()),
            BTreeMap::from([(2, 3)])
        );
        // The first group maxes out before the next.
        assert_eq!(
            sizes(&balance_scale_up(&[ng2, ng3], 4).unwrap()),
            BTreeMap::from([(2, 3), (3, 5)])
        );
        // The last group maxes out before the previous one.
        assert_eq!(
            sizes(&balance_scale_up(&[ng2, ng3, ng4], 9).unwrap()),
            BTreeMap::from([(2, 3), (3, 8), (4, 7)])
        );
        // All the room, capped to it.
        assert_eq!(
            sizes(&balance_scale_up(&[ng2, ng3, ng4], 900).unwrap()),
            BTreeMap::from([(2, 3), (3, 10), (4, 7)])
        );
        // A group above its maximum.
        assert_eq!(
            sizes(&balance_scale_up(&[ng2, ng5], 1).unwrap()),
            BTreeMap::from([(2, 2)])
        );
        // No group at all is an error.
        assert!(balance_scale_up(&[], 1).is_err());
    }
}

mod core_scaleup_resource_manager_test {
    //! Upstream's test cloud sizes nodes in cores and bytes and its limits
    //! in cores and bytes; `--memory-total` is in GiB, so `Limits` is too:
    //! where a case's memory meets a `Limits`, its bytes are GiB here.
    use outrigger_node_groups::scaleup::{
        Delta, Left, Limits, Totals, apply_limits, delta_for_node, exceeded, resources_left,
    };

    use super::*;

    fn node_group(min: i64, max: i64, size: i64, cores: i64, mem: i64) -> NodeGroup {
        let mut g = group("ng", res(cores * 1000, mem, 100), None);
        g.min = min;
        g.max = max;
        g.target = size;
        g
    }

    fn delta(ng: &NodeGroup) -> Delta {
        delta_for_node(ng.template.as_ref().unwrap())
    }

    // upstream: cluster-autoscaler/core/scaleup/resource/manager_test.go TestDeltaForNode (case ng1)
    #[test]
    fn test_delta_for_node_ng1() {
        let d = delta(&node_group(3, 10, 5, 8, 16));
        assert_eq!(
            d,
            Delta {
                cores: 8,
                memory_bytes: 16
            }
        );
    }

    // upstream: cluster-autoscaler/core/scaleup/resource/manager_test.go TestDeltaForNode (case ng2)
    #[test]
    fn test_delta_for_node_ng2() {
        let d = delta(&node_group(1, 20, 9, 4, 32));
        assert_eq!(
            d,
            Delta {
                cores: 4,
                memory_bytes: 32
            }
        );
    }

    fn left_for(size: i64, cores: i64, mem_gib: i64) -> Left {
        let g = node_group(3, 100, size, cores, mem_gib * GIB);
        let totals = Totals::of_groups(std::slice::from_ref(&g), [], size);
        let limits = Limits {
            max_nodes: 0,
            max_cores: 1000,
            max_memory_gib: 1000,
        };
        resources_left(&limits, &totals)
    }

    // upstream: cluster-autoscaler/core/scaleup/resource/manager_test.go TestResourcesLeft (case ng1)
    #[test]
    fn test_resources_left_ng1() {
        // cpu: 1000 - 8 * 5; memory: 1000 - 16 * 5.
        assert_eq!(
            left_for(5, 8, 16),
            Left {
                cores: Some(960),
                memory_bytes: Some(920 * GIB)
            }
        );
    }

    // upstream: cluster-autoscaler/core/scaleup/resource/manager_test.go TestResourcesLeft (case ng2)
    #[test]
    fn test_resources_left_ng2() {
        // cpu: 1000 - 4 * 100; memory: 1000 - 8 * 100.
        assert_eq!(
            left_for(100, 4, 8),
            Left {
                cores: Some(600),
                memory_bytes: Some(200 * GIB)
            }
        );
    }

    fn apply(left_cpu: i64, left_mem: i64, new_nodes: i64) -> i64 {
        let g = node_group(3, 10, 5, 8, 16);
        let left = Left {
            cores: Some(left_cpu),
            memory_bytes: Some(left_mem),
        };
        apply_limits(new_nodes, &left, &delta(&g))
    }

    // upstream: cluster-autoscaler/core/scaleup/resource/manager_test.go TestApplyLimits (case ng1)
    #[test]
    fn test_apply_limits_ng1() {
        assert_eq!(apply(80, 160, 10), 10);
    }

    // upstream: cluster-autoscaler/core/scaleup/resource/manager_test.go TestApplyLimits (case ng2)
    #[test]
    fn test_apply_limits_ng2() {
        // Memory: 100 / 16.
        assert_eq!(apply(80, 100, 10), 6);
    }

    // upstream: cluster-autoscaler/core/scaleup/resource/manager_test.go TestApplyLimits (case ng3)
    #[test]
    fn test_apply_limits_ng3() {
        // Cpu: 39 / 8.
        assert_eq!(apply(39, 160, 10), 4);
    }

    // upstream: cluster-autoscaler/core/scaleup/resource/manager_test.go TestApplyLimits (case ng4)
    #[test]
    fn test_apply_limits_ng4() {
        // Cpu and memory alike.
        assert_eq!(apply(40, 80, 10), 5);
    }

    fn check(cpu: i64, mem: i64) -> Vec<&'static str> {
        let left = Left {
            cores: Some(10),
            memory_bytes: Some(20),
        };
        exceeded(
            &left,
            &Delta {
                cores: cpu,
                memory_bytes: mem,
            },
        )
    }

    // upstream: cluster-autoscaler/core/scaleup/resource/manager_test.go TestCheckDeltaWithinLimits (case 1)
    #[test]
    fn test_check_delta_within_limits_within() {
        assert!(check(8, 16).is_empty());
    }

    // upstream: cluster-autoscaler/core/scaleup/resource/manager_test.go TestCheckDeltaWithinLimits (case 2)
    #[test]
    fn test_check_delta_within_limits_cpu_exceeded() {
        assert_eq!(check(12, 16), ["cpu"]);
    }

    // upstream: cluster-autoscaler/core/scaleup/resource/manager_test.go TestCheckDeltaWithinLimits (case 3)
    #[test]
    fn test_check_delta_within_limits_memory_exceeded() {
        assert_eq!(check(8, 32), ["memory"]);
    }

    // upstream: cluster-autoscaler/core/scaleup/resource/manager_test.go TestCheckDeltaWithinLimits (case 4)
    #[test]
    fn test_check_delta_within_limits_both_exceeded() {
        assert_eq!(check(16, 96), ["cpu", "memory"]);
    }
}
