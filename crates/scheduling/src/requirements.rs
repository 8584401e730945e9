//! The node-requirements algebra: what a pod, a node pool or an instance type
//! allows for each label key, and whether two of them can be satisfied at once.
//!
//! A requirement on one key is a set of values — a finite set (`In`), or the
//! complement of one (`NotIn`, `Exists`) — plus optional numeric bounds
//! (`Gt`, `Lt`) and an optional `minValues`. As in Kubernetes node affinity,
//! `NotIn` and `DoesNotExist` are satisfied by a node without the label, and
//! `DoesNotExist` is the empty finite set.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

/// An operator of a `NodeSelectorRequirement`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

impl Operator {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "In" => Self::In,
            "NotIn" => Self::NotIn,
            "Exists" => Self::Exists,
            "DoesNotExist" => Self::DoesNotExist,
            "Gt" => Self::Gt,
            "Lt" => Self::Lt,
            _ => return None,
        })
    }
}

/// The values allowed for one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// `false`: only `values` (and the empty set is DoesNotExist);
    /// `true`: anything but `values` (the empty complement is Exists).
    complement: bool,
    values: BTreeSet<String>,
    /// Values must be integers greater than this.
    greater_than: Option<i64>,
    /// Values must be integers less than this.
    less_than: Option<i64>,
    /// The key must exist (Exists, In, Gt, Lt).
    must_exist: bool,
    /// At least this many values must stay allowed (Karpenter's minValues).
    pub min_values: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    #[error("{key}: operator {op} needs {need}")]
    Values {
        key: String,
        op: String,
        need: &'static str,
    },
    #[error("{key}: {value:?} is not an integer")]
    NotInteger { key: String, value: String },
}

impl Requirement {
    /// Any value, or none.
    pub fn any() -> Self {
        Self {
            complement: true,
            values: BTreeSet::new(),
            greater_than: None,
            less_than: None,
            must_exist: false,
            min_values: None,
        }
    }

    pub fn new(key: &str, op: Operator, values: &[&str]) -> Result<Self, RequirementError> {
        let set: BTreeSet<String> = values.iter().map(|v| v.to_string()).collect();
        let need = |n: &'static str| RequirementError::Values {
            key: key.to_string(),
            op: format!("{op:?}"),
            need: n,
        };
        let int = |v: &str| {
            v.parse::<i64>().map_err(|_| RequirementError::NotInteger {
                key: key.to_string(),
                value: v.to_string(),
            })
        };
        let mut r = Self::any();
        match op {
            Operator::In => {
                if set.is_empty() {
                    return Err(need("at least one value"));
                }
                r.complement = false;
                r.values = set;
                r.must_exist = true;
            }
            Operator::NotIn => {
                if set.is_empty() {
                    return Err(need("at least one value"));
                }
                r.values = set;
            }
            Operator::Exists => {
                if !set.is_empty() {
                    return Err(need("no values"));
                }
                r.must_exist = true;
            }
            Operator::DoesNotExist => {
                if !set.is_empty() {
                    return Err(need("no values"));
                }
                r.complement = false;
            }
            Operator::Gt | Operator::Lt => {
                let [v] = values else {
                    return Err(need("exactly one integer value"));
                };
                let n = int(v)?;
                r.must_exist = true;
                if op == Operator::Gt {
                    r.greater_than = Some(n);
                } else {
                    r.less_than = Some(n);
                }
            }
        }
        Ok(r)
    }

    fn within_bounds(&self, v: &str) -> bool {
        if self.greater_than.is_none() && self.less_than.is_none() {
            return true;
        }
        match v.parse::<i64>() {
            Ok(n) => {
                self.greater_than.is_none_or(|g| n > g) && self.less_than.is_none_or(|l| n < l)
            }
            Err(_) => false,
        }
    }

    /// True if a node with this value for the key satisfies it (`None`: the
    /// node has no such label).
    pub fn allows(&self, value: Option<&str>) -> bool {
        match value {
            None => !self.must_exist,
            Some(v) => {
                let listed = self.values.contains(v);
                (listed != self.complement) && self.within_bounds(v)
            }
        }
    }

    /// The requirement both `self` and `o` impose.
    pub fn intersect(&self, o: &Requirement) -> Requirement {
        let greater_than = match (self.greater_than, o.greater_than) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let less_than = match (self.less_than, o.less_than) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (complement, mut values) = match (self.complement, o.complement) {
            (false, false) => (
                false,
                self.values.intersection(&o.values).cloned().collect(),
            ),
            (false, true) => (false, self.values.difference(&o.values).cloned().collect()),
            (true, false) => (false, o.values.difference(&self.values).cloned().collect()),
            (true, true) => (
                true,
                self.values
                    .union(&o.values)
                    .cloned()
                    .collect::<BTreeSet<_>>(),
            ),
        };
        let mut r = Requirement {
            complement,
            values: BTreeSet::new(),
            greater_than,
            less_than,
            must_exist: self.must_exist || o.must_exist,
            min_values: self.min_values.max(o.min_values),
        };
        if !complement {
            values.retain(|v: &String| r.within_bounds(v));
        }
        r.values = values;
        r
    }

    /// True if no node can satisfy it: nothing is allowed and absence is not
    /// either, or fewer values than `minValues` remain.
    pub fn is_unsatisfiable(&self) -> bool {
        let empty_range = matches!((self.greater_than, self.less_than), (Some(g), Some(l)) if l <= g.saturating_add(1));
        let no_values = if self.complement {
            empty_range
        } else {
            self.values.is_empty()
        };
        if no_values && self.must_exist {
            return true;
        }
        if let Some(min) = self.min_values
            && !self.complement
            && self.values.len() < min
        {
            return true;
        }
        false
    }

    /// The single value, if the requirement allows exactly one.
    pub fn single(&self) -> Option<&str> {
        if !self.complement && self.values.len() == 1 {
            self.values.iter().next().map(String::as_str)
        } else {
            None
        }
    }

    /// The allowed values of a finite set.
    pub fn values(&self) -> Option<&BTreeSet<String>> {
        (!self.complement).then_some(&self.values)
    }

    /// The requirement as node-selector terms that together mean the same
    /// (what a NodeClaim's spec carries): `In`/`DoesNotExist` for a finite
    /// set, else `NotIn` or `Exists`, plus `Gt`/`Lt` bounds.
    pub fn to_terms(&self) -> Vec<(Operator, Vec<String>)> {
        let list = |v: &BTreeSet<String>| v.iter().cloned().collect::<Vec<_>>();
        let mut out = vec![];
        match (self.complement, self.values.is_empty()) {
            (false, true) => out.push((Operator::DoesNotExist, vec![])),
            (false, false) => out.push((Operator::In, list(&self.values))),
            (true, false) => {
                out.push((Operator::NotIn, list(&self.values)));
                if self.must_exist && self.greater_than.is_none() && self.less_than.is_none() {
                    out.push((Operator::Exists, vec![]));
                }
            }
            (true, true) => {
                if self.must_exist && self.greater_than.is_none() && self.less_than.is_none() {
                    out.push((Operator::Exists, vec![]));
                }
            }
        }
        if self.complement {
            if let Some(g) = self.greater_than {
                out.push((Operator::Gt, vec![g.to_string()]));
            }
            if let Some(l) = self.less_than {
                out.push((Operator::Lt, vec![l.to_string()]));
            }
        }
        out
    }
}

/// Karpenter's wording: `In [spot]`, `NotIn [a b]`, `Exists`, `DoesNotExist`, `Gt 4`.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &BTreeSet<String>| v.iter().cloned().collect::<Vec<_>>().join(" ");
        let mut parts = vec![];
        match (self.complement, self.values.is_empty(), self.must_exist) {
            (false, true, _) => parts.push("DoesNotExist".to_string()),
            (false, false, _) => parts.push(format!("In [{}]", list(&self.values))),
            (true, false, _) => parts.push(format!("NotIn [{}]", list(&self.values))),
            (true, true, true) if self.greater_than.is_none() && self.less_than.is_none() => {
                parts.push("Exists".to_string())
            }
            (true, true, _) => {}
        }
        if let Some(g) = self.greater_than {
            parts.push(format!("Gt {g}"));
        }
        if let Some(l) = self.less_than {
            parts.push(format!("Lt {l}"));
        }
        if parts.is_empty() {
            parts.push("Any".to_string());
        }
        if let Some(m) = self.min_values {
            parts.push(format!("minValues {m}"));
        }
        write!(f, "{}", parts.join(", "))
    }
}

/// Requirements on many keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Requirements(pub BTreeMap<String, Requirement>);

/// Why two sets of requirements cannot both hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incompatible {
    pub key: String,
    pub ours: Box<Requirement>,
    pub theirs: Box<Requirement>,
}

impl fmt::Display for Incompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requires {} {}, but {} {}",
            self.key, self.ours, self.key, self.theirs
        )
    }
}

impl Requirements {
    /// Adds a requirement, intersecting with what the key already has.
    pub fn add(&mut self, key: &str, r: Requirement) {
        let next = match self.0.get(key) {
            Some(old) => old.intersect(&r),
            None => r,
        };
        self.0.insert(key.to_string(), next);
    }

    pub fn get(&self, key: &str) -> Option<&Requirement> {
        self.0.get(key)
    }

    /// Both at once; `Err` names the first key (in key order) that cannot hold.
    pub fn intersect(&self, o: &Requirements) -> Result<Requirements, Incompatible> {
        let mut out = self.clone();
        for (k, theirs) in &o.0 {
            let merged = match self.0.get(k) {
                Some(ours) => {
                    let m = ours.intersect(theirs);
                    if m.is_unsatisfiable() {
                        return Err(Incompatible {
                            key: k.clone(),
                            ours: Box::new(ours.clone()),
                            theirs: Box::new(theirs.clone()),
                        });
                    }
                    m
                }
                None => theirs.clone(),
            };
            out.0.insert(k.clone(), merged);
        }
        Ok(out)
    }

    pub fn compatible(&self, o: &Requirements) -> Result<(), Incompatible> {
        self.intersect(o).map(|_| ())
    }

    /// True if a node with these labels satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0
            .iter()
            .all(|(k, r)| r.allows(labels.get(k).map(String::as_str)))
    }

    /// The labels a node created for these requirements gets: every key that
    /// allows exactly one value.
    pub fn single_values(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter_map(|(k, r)| r.single().map(|v| (k.clone(), v.to_string())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req(op: Operator, vals: &[&str]) -> Requirement {
        Requirement::new("k", op, vals).unwrap()
    }

    #[test]
    fn operators_allow_as_node_affinity_does() {
        let r = req(Operator::In, &["a", "b"]);
        assert!(r.allows(Some("a")) && !r.allows(Some("c")) && !r.allows(None));
        let r = req(Operator::NotIn, &["a"]);
        assert!(!r.allows(Some("a")) && r.allows(Some("c")) && r.allows(None));
        let r = req(Operator::Exists, &[]);
        assert!(r.allows(Some("x")) && !r.allows(None));
        let r = req(Operator::DoesNotExist, &[]);
        assert!(!r.allows(Some("x")) && r.allows(None));
        let r = req(Operator::Gt, &["4"]);
        assert!(
            r.allows(Some("5")) && !r.allows(Some("4")) && !r.allows(Some("x")) && !r.allows(None)
        );
        let r = req(Operator::Lt, &["4"]);
        assert!(r.allows(Some("3")) && !r.allows(Some("4")));
    }

    #[test]
    fn bad_requirements_are_refused() {
        assert!(Requirement::new("k", Operator::In, &[]).is_err());
        assert!(Requirement::new("k", Operator::Exists, &["a"]).is_err());
        assert!(Requirement::new("k", Operator::Gt, &["a"]).is_err());
        assert!(Requirement::new("k", Operator::Gt, &["1", "2"]).is_err());
    }

    #[test]
    fn capacity_type_conflict_is_explained() {
        let mut pool = Requirements::default();
        pool.add("karpenter.sh/capacity-type", req(Operator::In, &["spot"]));
        let mut pod = Requirements::default();
        pod.add(
            "karpenter.sh/capacity-type",
            req(Operator::In, &["on-demand"]),
        );
        let e = pool.compatible(&pod).unwrap_err();
        assert_eq!(e.key, "karpenter.sh/capacity-type");
        assert_eq!(
            e.to_string(),
            "requires karpenter.sh/capacity-type In [spot], but karpenter.sh/capacity-type In [on-demand]"
        );
    }

    #[test]
    fn intersections() {
        let a = req(Operator::In, &["m6i.large", "m6i.xlarge"]);
        let b = req(Operator::NotIn, &["m6i.large"]);
        assert_eq!(a.intersect(&b).single(), Some("m6i.xlarge"));
        let n = req(Operator::NotIn, &["a"]).intersect(&req(Operator::DoesNotExist, &[]));
        assert!(!n.is_unsatisfiable() && n.allows(None));
        let gt = req(Operator::Gt, &["2"]).intersect(&req(Operator::In, &["1", "4", "8", "x"]));
        assert_eq!(gt.values().unwrap().iter().collect::<Vec<_>>(), ["4", "8"]);
        assert!(
            req(Operator::Gt, &["4"])
                .intersect(&req(Operator::Lt, &["5"]))
                .is_unsatisfiable()
        );
        assert!(
            !req(Operator::Gt, &["4"])
                .intersect(&req(Operator::Lt, &["6"]))
                .is_unsatisfiable()
        );
        let mut m = req(Operator::In, &["a", "b", "c"]);
        m.min_values = Some(3);
        assert!(
            m.intersect(&req(Operator::NotIn, &["a"]))
                .is_unsatisfiable()
        );
    }

    #[test]
    fn terms_round_trip() {
        for (op, vals) in [
            (Operator::In, vec!["a", "b"]),
            (Operator::NotIn, vec!["a"]),
            (Operator::Exists, vec![]),
            (Operator::DoesNotExist, vec![]),
            (Operator::Gt, vec!["4"]),
            (Operator::Lt, vec!["9"]),
        ] {
            let r = req(op, &vals);
            let mut back = Requirement::any();
            for (o, v) in r.to_terms() {
                let v: Vec<&str> = v.iter().map(String::as_str).collect();
                back = back.intersect(&req(o, &v));
            }
            for probe in [
                None,
                Some("a"),
                Some("b"),
                Some("c"),
                Some("3"),
                Some("5"),
                Some("10"),
            ] {
                assert_eq!(r.allows(probe), back.allows(probe), "{op:?} {probe:?}");
            }
        }
    }

    #[test]
    fn single_values_become_node_labels() {
        let mut r = Requirements::default();
        r.add(
            "topology.kubernetes.io/zone",
            req(Operator::In, &["ap-southeast-1a"]),
        );
        r.add(
            "karpenter.sh/capacity-type",
            req(Operator::In, &["spot", "on-demand"]),
        );
        r.add(
            "karpenter.sh/capacity-type",
            req(Operator::NotIn, &["on-demand"]),
        );
        assert_eq!(
            r.single_values(),
            [
                ("karpenter.sh/capacity-type".to_string(), "spot".to_string()),
                (
                    "topology.kubernetes.io/zone".to_string(),
                    "ap-southeast-1a".to_string()
                )
            ]
            .into()
        );
    }

    fn arb_req() -> impl Strategy<Value = Requirement> {
        let vals =
            proptest::collection::vec(prop::sample::select(vec!["1", "2", "3", "a", "b"]), 1..3);
        (0usize..6, vals).prop_map(|(op, v)| {
            let ops = [
                Operator::In,
                Operator::NotIn,
                Operator::Exists,
                Operator::DoesNotExist,
                Operator::Gt,
                Operator::Lt,
            ];
            let op = ops[op];
            let v: Vec<&str> = match op {
                Operator::Exists | Operator::DoesNotExist => vec![],
                Operator::Gt | Operator::Lt => vec![["1", "2", "3"][v.len() % 3]],
                _ => v,
            };
            Requirement::new("k", op, &v).unwrap()
        })
    }

    proptest! {
        /// The intersection allows exactly what both allow, for every value
        /// (and for absence).
        #[test]
        fn intersection_is_conjunction(a in arb_req(), b in arb_req()) {
            let i = a.intersect(&b);
            for v in [None, Some("1"), Some("2"), Some("3"), Some("a"), Some("b"), Some("z")] {
                prop_assert_eq!(i.allows(v), a.allows(v) && b.allows(v), "value {:?}: {} ∩ {} = {}", v, a, b, i);
            }
            prop_assert_eq!(a.intersect(&b), b.intersect(&a));
        }

        /// Unsatisfiable means nothing in the test universe is allowed.
        #[test]
        fn unsatisfiable_allows_nothing(a in arb_req(), b in arb_req()) {
            let i = a.intersect(&b);
            if i.is_unsatisfiable() {
                for v in [None, Some("1"), Some("2"), Some("3"), Some("a"), Some("b"), Some("z")] {
                    prop_assert!(!i.allows(v));
                }
            }
        }
    }
}
