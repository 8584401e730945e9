//! Resource lists as kube-scheduler counts them: cpu in milli-cores (rounded
//! up), memory, ephemeral storage and extended resources in whole units
//! (rounded up), pods as a count.

use std::{collections::BTreeMap, fmt};

use outrigger_values::{
    format_resource,
    quantity::{Quantity, QuantityError},
};

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const PODS: &str = "pods";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";

/// A resource list. Absent extended resources are zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub pods: i64,
    pub ephemeral_bytes: i64,
    /// Extended resources such as `nvidia.com/gpu`, in units.
    pub extended: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("resource {name}: {source}")]
    Quantity { name: String, source: QuantityError },
    #[error("resource {name}: {value} is out of range")]
    Range { name: String, value: String },
}

fn to_i64(name: &str, q: Quantity, v: i128) -> Result<i64, ResourceError> {
    i64::try_from(v).map_err(|_| ResourceError::Range {
        name: name.to_string(),
        value: q.to_string(),
    })
}

impl Resources {
    /// From `(name, quantity string)` pairs, as in a pod's requests.
    pub fn parse<'a>(
        list: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ResourceError> {
        let mut r = Resources::default();
        for (name, value) in list {
            let q = Quantity::parse(value).map_err(|source| ResourceError::Quantity {
                name: name.to_string(),
                source,
            })?;
            r.set(name, q)?;
        }
        Ok(r)
    }

    /// Sets one resource from a quantity, with Kubernetes' rounding.
    pub fn set(&mut self, name: &str, q: Quantity) -> Result<(), ResourceError> {
        match name {
            CPU => self.cpu_millis = to_i64(name, q, q.milli_ceil())?,
            MEMORY => self.memory_bytes = to_i64(name, q, q.value_ceil())?,
            PODS => self.pods = to_i64(name, q, q.value_ceil())?,
            EPHEMERAL_STORAGE => self.ephemeral_bytes = to_i64(name, q, q.value_ceil())?,
            other => {
                let v = to_i64(name, q, q.value_ceil())?;
                if v == 0 {
                    self.extended.remove(other);
                } else {
                    self.extended.insert(other.to_string(), v);
                }
            }
        }
        Ok(())
    }

    /// The value of one resource (cpu in millis).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            CPU => self.cpu_millis,
            MEMORY => self.memory_bytes,
            PODS => self.pods,
            EPHEMERAL_STORAGE => self.ephemeral_bytes,
            other => self.extended.get(other).copied().unwrap_or(0),
        }
    }

    pub fn add(&mut self, o: &Resources) {
        self.cpu_millis = self.cpu_millis.saturating_add(o.cpu_millis);
        self.memory_bytes = self.memory_bytes.saturating_add(o.memory_bytes);
        self.pods = self.pods.saturating_add(o.pods);
        self.ephemeral_bytes = self.ephemeral_bytes.saturating_add(o.ephemeral_bytes);
        for (k, v) in &o.extended {
            let e = self.extended.entry(k.clone()).or_insert(0);
            *e = e.saturating_add(*v);
        }
    }

    pub fn sum<'a>(items: impl IntoIterator<Item = &'a Resources>) -> Resources {
        let mut out = Resources::default();
        for r in items {
            out.add(r);
        }
        out
    }

    /// Element-wise maximum (for example the largest init container).
    pub fn max(&self, o: &Resources) -> Resources {
        let mut extended = self.extended.clone();
        for (k, v) in &o.extended {
            let e = extended.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
        Resources {
            cpu_millis: self.cpu_millis.max(o.cpu_millis),
            memory_bytes: self.memory_bytes.max(o.memory_bytes),
            pods: self.pods.max(o.pods),
            ephemeral_bytes: self.ephemeral_bytes.max(o.ephemeral_bytes),
            extended,
        }
    }

    /// `self - o`, which may go negative (a node over-committed).
    pub fn minus(&self, o: &Resources) -> Resources {
        let mut extended = self.extended.clone();
        for (k, v) in &o.extended {
            let e = extended.entry(k.clone()).or_insert(0);
            *e = e.saturating_sub(*v);
        }
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(o.memory_bytes),
            pods: self.pods.saturating_sub(o.pods),
            ephemeral_bytes: self.ephemeral_bytes.saturating_sub(o.ephemeral_bytes),
            extended,
        }
    }

    /// The resources of `self` that exceed `capacity`, by name: empty when
    /// `self` fits.
    pub fn exceeding(&self, capacity: &Resources) -> Vec<&str> {
        let mut out = vec![];
        for (name, want, have) in [
            (CPU, self.cpu_millis, capacity.cpu_millis),
            (MEMORY, self.memory_bytes, capacity.memory_bytes),
            (PODS, self.pods, capacity.pods),
            (
                EPHEMERAL_STORAGE,
                self.ephemeral_bytes,
                capacity.ephemeral_bytes,
            ),
        ] {
            if want > have {
                out.push(name);
            }
        }
        for (k, v) in &self.extended {
            if *v > capacity.extended.get(k).copied().unwrap_or(0) {
                out.push(k.as_str());
            }
        }
        out
    }

    pub fn fits(&self, capacity: &Resources) -> bool {
        self.exceeding(capacity).is_empty()
    }
}

/// Karpenter's log form: `{"cpu":"3155m","memory":"120Mi","pods":"6"}`,
/// with zero entries left out.
impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<(String, String)> = [
            (CPU, self.cpu_millis),
            (EPHEMERAL_STORAGE, self.ephemeral_bytes),
            (MEMORY, self.memory_bytes),
            (PODS, self.pods),
        ]
        .into_iter()
        .chain(self.extended.iter().map(|(k, v)| (k.as_str(), *v)))
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| (k.to_string(), format_resource(k, v)))
        .collect();
        parts.sort();
        write!(f, "{{")?;
        for (i, (k, v)) in parts.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "\"{k}\":\"{v}\"")?;
        }
        write!(f, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_with_kubernetes_rounding() {
        let r = Resources::parse([
            ("cpu", "100500u"),
            ("memory", "1.5Ki"),
            ("nvidia.com/gpu", "1"),
            ("pods", "1"),
        ])
        .unwrap();
        assert_eq!(r.cpu_millis, 101);
        assert_eq!(r.memory_bytes, 1536);
        assert_eq!(r.get("nvidia.com/gpu"), 1);
        assert_eq!(r.pods, 1);
        let e = Resources::parse([("memory", "12Qi")]).unwrap_err();
        assert!(e.to_string().contains("memory"), "{e}");
    }

    #[test]
    fn fits_and_names_what_exceeds() {
        let cap = Resources::parse([("cpu", "2"), ("memory", "4Gi"), ("pods", "10")]).unwrap();
        let want = Resources::parse([("cpu", "2500m"), ("memory", "1Gi"), ("nvidia.com/gpu", "1")])
            .unwrap();
        assert_eq!(want.exceeding(&cap), vec!["cpu", "nvidia.com/gpu"]);
        assert!(!want.fits(&cap));
        let small = Resources::parse([("cpu", "2"), ("memory", "4Gi")]).unwrap();
        assert!(small.fits(&cap));
    }

    #[test]
    fn karpenter_log_form() {
        // The seed's "Created node with 3 pods requesting ..." line.
        let r = Resources::parse([("cpu", "3155m"), ("memory", "120Mi"), ("pods", "6")]).unwrap();
        assert_eq!(
            r.to_string(),
            r#"{"cpu":"3155m","memory":"120Mi","pods":"6"}"#
        );
    }

    fn arb() -> impl Strategy<Value = Resources> {
        (
            0i64..100_000,
            0i64..1 << 40,
            0i64..500,
            0i64..1 << 40,
            proptest::option::of(0i64..8),
        )
            .prop_map(|(c, m, p, e, g)| Resources {
                cpu_millis: c,
                memory_bytes: m,
                pods: p,
                ephemeral_bytes: e,
                extended: g
                    .map(|g| [("nvidia.com/gpu".to_string(), g)].into())
                    .unwrap_or_default(),
            })
    }

    proptest! {
        #[test]
        fn add_then_minus_is_identity(a in arb(), b in arb()) {
            let mut s = a.clone();
            s.add(&b);
            let back = s.minus(&b);
            for name in [CPU, MEMORY, PODS, EPHEMERAL_STORAGE, "nvidia.com/gpu"] {
                prop_assert_eq!(back.get(name), a.get(name));
            }
        }

        #[test]
        fn parts_fit_in_their_sum(a in arb(), b in arb()) {
            let s = Resources::sum([&a, &b]);
            prop_assert!(a.fits(&s));
            prop_assert!(b.fits(&s));
            prop_assert!(a.fits(&a.max(&b)));
        }
    }
}
