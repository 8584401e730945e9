//! Instance-type sets as bitsets.

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TypeSet(Vec<u64>);

impl TypeSet {
    pub(super) fn empty(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }
    pub(super) fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    pub(super) fn and(&self, o: &TypeSet) -> TypeSet {
        TypeSet(self.0.iter().zip(&o.0).map(|(a, b)| a & b).collect())
    }
    pub(super) fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
    pub(super) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, bits)| {
            let mut b = *bits;
            std::iter::from_fn(move || {
                if b == 0 {
                    return None;
                }
                let i = b.trailing_zeros() as usize;
                b &= b - 1;
                Some(w * 64 + i)
            })
        })
    }
    pub(super) fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    pub(super) fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    pub(super) fn retain(&mut self, mut keep: impl FnMut(usize) -> bool) {
        for w in 0..self.0.len() {
            let mut b = self.0[w];
            while b != 0 {
                let i = b.trailing_zeros() as usize;
                b &= b - 1;
                if !keep(w * 64 + i) {
                    self.0[w] &= !(1 << i);
                }
            }
        }
    }
}
