//! The total order in which an event's handlers run.
//!
//! Every handler of an event (the original handler, unkeyed and keyed
//! bindings alike) takes part in one total order, defined as follows.
//!
//! * Each binding has a [`Position`]: `First`, `Middle` (the default) or
//!   `Last`. Every `First` binding runs before every `Middle` binding, which
//!   runs before every `Last` binding. The original handler is `Middle`.
//! * A binding may also ask to run [`before`](Placement::before) or
//!   [`after`](Placement::after) named bindings of the same event (including
//!   [`BindingId::ORIGINAL`]). The named bindings must be installed when the
//!   constraint is given.
//! * Among all orders satisfying these constraints, the dispatcher uses the
//!   one that gives precedence by install order: the earliest-installed
//!   binding (the original handler counts as installed first) runs as early
//!   as the constraints allow; given that, the next-earliest runs as early as
//!   possible; and so on. Formally: the valid order whose sequence
//!   "position of binding 1, position of binding 2, ..." (bindings numbered
//!   by install order) is lexicographically smallest. So a binding that asks
//!   to run `before(x)` is placed just early enough, and does not push
//!   bindings installed before it out of their places unless its constraints
//!   force it. With no before/after constraints the order is simply: `First`
//!   bindings, the original, `Middle` bindings, `Last` bindings, each group
//!   in install order.
//! * An install whose constraints contradict the positions (a `First`
//!   binding asked to run after a `Middle` one, ...) or close a cycle is
//!   rejected with an [`OrderError`]; nothing changes.
//! * When a binding is uninstalled, constraints that named it are dropped and
//!   the order is recomputed by the same rule.
//!
//! A raise whose event has a key runs, in this order, the unkeyed bindings
//! and the bindings keyed with the raise's key; keyed bindings with other
//! keys are skipped without being looked at.

use alloc::collections::BinaryHeap;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use hashbrown::HashMap;

use crate::binding::BindingId;

/// The band a binding runs in; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Position {
    /// Before every `Middle` and `Last` binding.
    First,
    /// The default; the original handler is here.
    #[default]
    Middle,
    /// After every `First` and `Middle` binding.
    Last,
}

/// Where a binding asks to run; see the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// The binding's band.
    pub position: Position,
    /// Bindings this one must run before.
    pub before: Vec<BindingId>,
    /// Bindings this one must run after.
    pub after: Vec<BindingId>,
}

impl Placement {
    /// Whether the placement has before/after constraints.
    pub fn is_constrained(&self) -> bool {
        !self.before.is_empty() || !self.after.is_empty()
    }
}

/// Why a requested placement cannot be satisfied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderError {
    /// A before/after constraint names a binding that is not installed on
    /// this event.
    UnknownBinding(BindingId),
    /// `earlier` must run before `later`, but `earlier`'s position is after
    /// `later`'s (for example `earlier` is `Last` and `later` is `First`).
    PositionConflict {
        /// The binding required to run first.
        earlier: BindingId,
        /// The binding required to run second.
        later: BindingId,
    },
    /// The before/after constraints form a cycle; these bindings are on it
    /// or must run before one that is.
    Cycle(Vec<BindingId>),
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderError::UnknownBinding(id) => write!(f, "no binding {id} on this event"),
            OrderError::PositionConflict { earlier, later } => write!(
                f,
                "{earlier} must run before {later}, but its position is later"
            ),
            OrderError::Cycle(ids) => {
                f.write_str("ordering constraints form a cycle through")?;
                for id in ids {
                    write!(f, " {id}")?;
                }
                Ok(())
            }
        }
    }
}

/// One participant in the order. `nodes` passed to [`total_order`] must be
/// sorted by install order (ascending id).
pub(crate) struct OrderNode<'a> {
    pub(crate) id: BindingId,
    pub(crate) placement: &'a Placement,
}

/// Computes the total order of `nodes` (given in install order) as indices
/// into `nodes`. Constraints naming ids not in `nodes` are ignored (the
/// caller checks new constraints for unknown ids beforehand).
pub(crate) fn total_order(nodes: &[OrderNode<'_>]) -> Result<Vec<usize>, OrderError> {
    if nodes.iter().all(|node| !node.placement.is_constrained()) {
        // Only bands: a stable three-way partition.
        let mut order = Vec::with_capacity(nodes.len());
        for band in [Position::First, Position::Middle, Position::Last] {
            order.extend(
                nodes
                    .iter()
                    .enumerate()
                    .filter(|(_, node)| node.placement.position == band)
                    .map(|(index, _)| index),
            );
        }
        return Ok(order);
    }

    let index_of: HashMap<BindingId, usize> = nodes
        .iter()
        .enumerate()
        .map(|(index, node)| (node.id, index))
        .collect();
    // Edges between bindings of the same band; an edge from an earlier band
    // to a later one is satisfied by the bands, one the other way round is
    // a conflict.
    let mut predecessors: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut unplaced_successors = vec![0usize; nodes.len()];
    let mut add_edge = |earlier: usize, later: usize| -> Result<(), OrderError> {
        let (from, to) = (
            nodes[earlier].placement.position,
            nodes[later].placement.position,
        );
        if from > to {
            return Err(OrderError::PositionConflict {
                earlier: nodes[earlier].id,
                later: nodes[later].id,
            });
        }
        if from == to {
            predecessors[later].push(earlier);
            unplaced_successors[earlier] += 1;
        }
        Ok(())
    };
    for (index, node) in nodes.iter().enumerate() {
        for other in &node.placement.before {
            if let Some(&other) = index_of.get(other) {
                add_edge(index, other)?;
            }
        }
        for other in &node.placement.after {
            if let Some(&other) = index_of.get(other) {
                add_edge(other, index)?;
            }
        }
    }

    // Per band, build the order from its end: repeatedly place last the
    // latest-installed binding all of whose successors are placed. Filling
    // from the back with the largest index is what gives the smallest
    // indices the earliest possible places (see the module docs).
    let mut order = Vec::with_capacity(nodes.len());
    for band in [Position::First, Position::Middle, Position::Last] {
        let members: Vec<usize> = (0..nodes.len())
            .filter(|&index| nodes[index].placement.position == band)
            .collect();
        let mut ready: BinaryHeap<usize> = members
            .iter()
            .copied()
            .filter(|&index| unplaced_successors[index] == 0)
            .collect();
        let mut reversed = Vec::with_capacity(members.len());
        while let Some(index) = ready.pop() {
            reversed.push(index);
            for &earlier in &predecessors[index] {
                unplaced_successors[earlier] -= 1;
                if unplaced_successors[earlier] == 0 {
                    ready.push(earlier);
                }
            }
        }
        if reversed.len() < members.len() {
            let stuck = members
                .iter()
                .filter(|&&index| unplaced_successors[index] > 0)
                .map(|&index| nodes[index].id)
                .collect();
            return Err(OrderError::Cycle(stuck));
        }
        order.extend(reversed.iter().rev());
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(position: Position, before: &[u64], after: &[u64]) -> Placement {
        Placement {
            position,
            before: before.iter().map(|&id| BindingId::from_raw(id)).collect(),
            after: after.iter().map(|&id| BindingId::from_raw(id)).collect(),
        }
    }

    fn order_of(spec: &[(u64, Placement)]) -> Result<Vec<u64>, OrderError> {
        let nodes: Vec<OrderNode<'_>> = spec
            .iter()
            .map(|(id, placement)| OrderNode {
                id: BindingId::from_raw(*id),
                placement,
            })
            .collect();
        total_order(&nodes).map(|order| order.into_iter().map(|i| spec[i].0).collect())
    }

    #[test]
    fn bands_then_install_order() {
        let spec = [
            (0, placement(Position::Middle, &[], &[])),
            (1, placement(Position::Last, &[], &[])),
            (2, placement(Position::First, &[], &[])),
            (3, placement(Position::Middle, &[], &[])),
            (4, placement(Position::First, &[], &[])),
        ];
        assert_eq!(order_of(&spec).unwrap(), [2, 4, 0, 3, 1]);
    }

    #[test]
    fn before_and_after_move_bindings_within_a_band() {
        let spec = [
            (0, placement(Position::Middle, &[], &[])),
            (1, placement(Position::Middle, &[], &[])),
            (2, placement(Position::Middle, &[0], &[])),
            (3, placement(Position::Middle, &[], &[1])),
            (4, placement(Position::Middle, &[2], &[])),
        ];
        // 4 before 2 before 0; 3 after 1. The original (0) runs as early as
        // it can, which puts 4 and 2 just in front of it.
        assert_eq!(order_of(&spec).unwrap(), [4, 2, 0, 1, 3]);
    }

    #[test]
    fn constraint_across_bands_in_band_order_is_fine() {
        let spec = [
            (0, placement(Position::First, &[], &[])),
            (1, placement(Position::Last, &[], &[0])),
        ];
        assert_eq!(order_of(&spec).unwrap(), [0, 1]);
    }

    #[test]
    fn constraint_against_bands_is_rejected() {
        let spec = [
            (0, placement(Position::Middle, &[], &[])),
            (1, placement(Position::First, &[], &[0])),
        ];
        assert_eq!(
            order_of(&spec),
            Err(OrderError::PositionConflict {
                earlier: BindingId::from_raw(0),
                later: BindingId::from_raw(1),
            })
        );
    }

    #[test]
    fn cycles_are_rejected() {
        let spec = [
            (1, placement(Position::Middle, &[], &[])),
            (2, placement(Position::Middle, &[1], &[])),
            (3, placement(Position::Middle, &[2], &[1])),
        ];
        match order_of(&spec) {
            Err(OrderError::Cycle(ids)) => {
                assert!(ids.contains(&BindingId::from_raw(3)));
                assert!(ids.contains(&BindingId::from_raw(1)));
            }
            other => panic!("expected a cycle, got {other:?}"),
        }
    }

    #[test]
    fn unknown_ids_are_ignored_here() {
        let spec = [
            (1, placement(Position::Middle, &[99], &[])),
            (2, placement(Position::Middle, &[1], &[])),
        ];
        assert_eq!(order_of(&spec).unwrap(), [2, 1]);
    }
}
