//! Where the children of a generation are made: on this host by default, or by a
//! [`ChildFarm`] (a cluster of workers) that hands each child's order to another machine and
//! returns the nodes it made. An order names everything by value or by hash, so a child made
//! elsewhere from the same order is the same node, byte for byte.

use super::{Evolution, NodeRecord, RunError, StepTimes};
use crate::hash::ContentHash;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// What the child of one (generation, slot) is made from: the parent and the meta agent by hash,
/// the seed and the iterations left by value. `/history` comes with it as a [`HistorySnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildOrder {
    pub generation: u32,
    pub slot: u32,
    pub parent: ContentHash,
    pub parent_tree: ContentHash,
    /// The meta agent that rewrites the parent (the parent's own, or the initial one when the
    /// meta agent is fixed).
    pub meta_component: ContentHash,
    pub seed: u64,
    pub iterations_left: u32,
}

/// The archive as `/history` shows it to the children of one generation.
#[derive(Debug, Clone, Default)]
pub struct HistorySnapshot {
    /// One line per node (`archive.json`).
    pub nodes: Vec<Value>,
    /// Each earlier node in full, oldest first (`nodes/<id>.json`).
    pub entries: Vec<(ContentHash, Arc<Value>)>,
}

/// Makes the children of one generation somewhere else. It gets the loop itself, to read its
/// archive and settings and to make a child here when the farm cannot (a spot check, a job no
/// worker could finish); it returns one node per order, each already in the loop's archive.
pub trait ChildFarm: Send + Sync {
    fn make_children<'a>(
        &'a self,
        evolution: &'a Evolution,
        orders: Vec<ChildOrder>,
        snapshot: Arc<HistorySnapshot>,
    ) -> BoxFuture<'a, Result<Vec<(NodeRecord, StepTimes)>, RunError>>;
}
