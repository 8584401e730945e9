//! Interned requirements, and building requirements from labels.

use hashbrown::HashMap;

use crate::{
    model::Labels,
    requirements::{Operator, Requirement, Requirements},
};

#[derive(Default)]
pub(super) struct Interner {
    list: Vec<Requirements>,
    ids: HashMap<Requirements, u32>,
}

impl Interner {
    pub(super) fn intern(&mut self, r: Requirements) -> u32 {
        if let Some(id) = self.ids.get(&r) {
            return *id;
        }
        let id = self.list.len() as u32;
        self.list.push(r.clone());
        self.ids.insert(r, id);
        id
    }
    pub(super) fn get(&self, id: u32) -> &Requirements {
        &self.list[id as usize]
    }
}

pub(super) fn in_req(key: &str, value: &str) -> Requirement {
    Requirement::new(key, Operator::In, &[value]).expect("one value is a valid In")
}

pub(super) fn labels_req(labels: &Labels) -> Requirements {
    let mut r = Requirements::default();
    for (k, v) in labels {
        r.add(k, in_req(k, v));
    }
    r
}
