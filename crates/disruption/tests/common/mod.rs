//! A small cluster for disruption tests: the EKS catalogue (on-demand at
//! its price, spot at 30 % of it, three zones), pools, nodes with their
//! claims and pods, as the solver's problem and disruption's facts.
#![allow(dead_code, clippy::unwrap_used)]

use std::{collections::BTreeMap, time::Duration};

use outrigger_disruption::{
    Budget, NodeFacts, Pass, PodFacts, Policy, PoolPolicy,
    consolidate::{Command, Input},
};
use outrigger_scheduling::{
    eks,
    model::{
        CAPACITY_ON_DEMAND, CAPACITY_SPOT, InstanceType, LABEL_CAPACITY_TYPE, LABEL_HOSTNAME,
        LABEL_INSTANCE_TYPE, LABEL_NODEPOOL, LABEL_ZONE, Node, NodePool, Offering, Pod, Problem,
    },
    requirements::{Operator, Requirement},
    resources::Resources,
};

pub const ZONES: [&str; 3] = ["ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"];

pub fn now() -> jiff::Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

pub struct World {
    pub problem: Problem,
    pub facts: Vec<NodeFacts>,
    pub pools: Vec<PoolPolicy>,
    pub spot_to_spot: bool,
}

pub fn catalogue() -> Vec<InstanceType> {
    eks::catalogue()
        .into_iter()
        .map(|(shape, od)| {
            let mut offerings = vec![];
            for z in ZONES {
                offerings.push(Offering {
                    zone: z.into(),
                    capacity_type: CAPACITY_ON_DEMAND.into(),
                    price: od,
                    available: true,
                });
                offerings.push(Offering {
                    zone: z.into(),
                    capacity_type: CAPACITY_SPOT.into(),
                    price: (od * 0.3 * 1e6).round() / 1e6,
                    available: true,
                });
            }
            eks::instance_type(&shape, &eks::Kubelet::default(), offerings)
        })
        .collect()
}

/// The pool of Karpenter's consolidation suite: WhenEmptyOrUnderutilized,
/// `consolidateAfter: 0s`, budget `100%`.
pub fn policy(name: &str) -> PoolPolicy {
    PoolPolicy {
        name: name.into(),
        policy: Policy::WhenEmptyOrUnderutilized,
        consolidate_after: Some(Duration::ZERO),
        budgets: vec![budget("100%")],
        min_savings: None,
    }
}

pub fn budget(nodes: &str) -> Budget {
    Budget {
        nodes: nodes.into(),
        ..Default::default()
    }
}

impl World {
    pub fn new() -> Self {
        World {
            problem: Problem {
                instance_types: catalogue(),
                ..Default::default()
            },
            facts: vec![],
            pools: vec![],
            spot_to_spot: true,
        }
    }

    /// A pool; `capacity_types`: what its requirements allow (empty: any).
    pub fn pool(&mut self, p: PoolPolicy, capacity_types: &[&str]) -> &mut Self {
        let mut m = NodePool {
            name: p.name.clone(),
            ..Default::default()
        };
        if !capacity_types.is_empty() {
            m.requirements.add(
                LABEL_CAPACITY_TYPE,
                Requirement::new(LABEL_CAPACITY_TYPE, Operator::In, capacity_types).unwrap(),
            );
        }
        self.problem.pools.push(m);
        self.pools.push(p);
        self
    }

    pub fn ty(&self, name: &str) -> &InstanceType {
        self.problem
            .instance_types
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no type {name}"))
    }

    /// A node of the pool with its claim, initialized, Ready,
    /// consolidatable, with `pods` (name, cpu) of an app.
    pub fn node<S: AsRef<str>>(
        &mut self,
        name: &str,
        ty: &str,
        ct: &str,
        pool: &str,
        pods: &[(S, &str)],
    ) -> usize {
        let t = self.ty(ty).clone();
        let mut labels: BTreeMap<String, String> = t.requirements.single_values();
        labels.insert(LABEL_ZONE.into(), ZONES[0].into());
        labels.insert(LABEL_CAPACITY_TYPE.into(), ct.into());
        labels.insert(LABEL_INSTANCE_TYPE.into(), ty.into());
        labels.insert(LABEL_HOSTNAME.into(), name.into());
        labels.insert(LABEL_NODEPOOL.into(), pool.into());
        let mut model_pods = vec![];
        let mut facts = vec![];
        for (p, cpu) in pods {
            let p = p.as_ref();
            let mut m = Pod::new("default", p, Resources::parse([("cpu", *cpu)]).unwrap());
            m.labels.insert("app".into(), "test".into());
            model_pods.push(m);
            facts.push(PodFacts {
                key: format!("default/{p}"),
                active: true,
                reschedulable: true,
                evictable: true,
                eviction_cost: 1.0,
                ..Default::default()
            });
        }
        let index = self.problem.nodes.len();
        self.problem.nodes.push(Node {
            name: name.into(),
            labels,
            allocatable: t.allocatable(),
            pods: model_pods,
            pool: Some(pool.into()),
            ..Default::default()
        });
        self.facts.push(NodeFacts {
            name: name.into(),
            claim: Some(format!("{name}-claim")),
            has_node: true,
            pool: Some(pool.into()),
            problem_index: Some(index),
            initialized: true,
            ready: true,
            instance_type: Some(ty.into()),
            capacity_type: Some(ct.into()),
            zone: Some(ZONES[0].into()),
            consolidatable: true,
            lifetime_remaining: 1.0,
            pods: facts,
            ..Default::default()
        });
        index
    }

    pub fn input(&self) -> Input<'_> {
        Input {
            problem: &self.problem,
            nodes: &self.facts,
            pools: &self.pools,
            spot_to_spot: self.spot_to_spot,
        }
    }

    pub fn pass(&self) -> Pass {
        outrigger_disruption::consolidation_pass(&self.input(), now())
    }

    pub fn command(&self) -> Command {
        self.pass().command.expect("a command")
    }

    /// The names of a command's candidates.
    pub fn names(&self, cmd: &Command) -> Vec<String> {
        cmd.candidates
            .iter()
            .map(|&i| self.facts[i].name.clone())
            .collect()
    }

    /// The instance types a replacement may launch as.
    pub fn replacement_types(&self, cmd: &Command) -> Vec<String> {
        cmd.replacements
            .iter()
            .flat_map(|r| {
                r.claim
                    .instance_types
                    .iter()
                    .map(|&t| self.problem.instance_types[t].name.clone())
            })
            .collect()
    }

    /// Why each node was left, as `(node, message)`.
    pub fn reasons(&self, pass: &Pass) -> Vec<(String, String)> {
        pass.unconsolidatable
            .iter()
            .map(|(i, m)| (self.facts[*i].name.clone(), m.clone()))
            .chain(
                pass.blocked
                    .iter()
                    .map(|(i, b)| (self.facts[*i].name.clone(), b.to_string())),
            )
            .collect()
    }
}

/// `n` pods named `prefix-i` of `cpu` each.
pub fn pods(prefix: &str, n: usize, cpu: &'static str) -> Vec<(String, &'static str)> {
    (0..n).map(|i| (format!("{prefix}-{i}"), cpu)).collect()
}
