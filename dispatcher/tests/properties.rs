//! Property tests against simple reference models: the dispatch order
//! (positions, before/after, rejection of impossible constraints), and
//! guards + keys + Cancel + result folding.

mod common;

use std::sync::{Arc, Mutex};

use common::principal;
use dispatcher::{BindingId, Event, InstallError, Position, RaiseError};
use proptest::prelude::*;

fn position(code: u8) -> Position {
    match code % 3 {
        0 => Position::First,
        1 => Position::Middle,
        _ => Position::Last,
    }
}

/// One participant in the reference model of the order.
#[derive(Clone, Debug)]
struct ModelNode {
    label: usize,
    position: Position,
    before: Vec<usize>,
    after: Vec<usize>,
}

/// The reference order: among *all* permutations satisfying the bands and
/// the constraints, the one in which label 0 comes as early as possible,
/// then label 1, ... (labels are install order). `None` if no permutation
/// is valid. Brute force: fine for the small sizes generated.
fn model_order(nodes: &[ModelNode]) -> Option<Vec<usize>> {
    fn permutations(items: &mut Vec<usize>, k: usize, out: &mut Vec<Vec<usize>>) {
        if k == items.len() {
            out.push(items.clone());
            return;
        }
        for i in k..items.len() {
            items.swap(k, i);
            permutations(items, k + 1, out);
            items.swap(k, i);
        }
    }
    let present: Vec<usize> = nodes.iter().map(|n| n.label).collect();
    let node = |label: usize| nodes.iter().find(|n| n.label == label).unwrap();
    let mut all = Vec::new();
    permutations(&mut present.clone(), 0, &mut all);
    let valid = |perm: &Vec<usize>| {
        let at = |label: usize| perm.iter().position(|&l| l == label);
        perm.windows(2)
            .all(|w| node(w[0]).position <= node(w[1]).position)
            && nodes.iter().all(|n| {
                let me = at(n.label).unwrap();
                n.before.iter().all(|&o| at(o).is_none_or(|p| me < p))
                    && n.after.iter().all(|&o| at(o).is_none_or(|p| me > p))
            })
    };
    let mut sorted_labels = present.clone();
    sorted_labels.sort();
    all.into_iter().filter(valid).min_by_key(|perm| {
        sorted_labels
            .iter()
            .map(|&label| perm.iter().position(|&l| l == label).unwrap())
            .collect::<Vec<_>>()
    })
}

#[derive(Clone, Debug)]
enum OrderOp {
    /// Install with a position and before/after targets chosen (modulo the
    /// number installed) among the installed handlers.
    Install {
        position: u8,
        before: Vec<usize>,
        after: Vec<usize>,
    },
    /// Uninstall the installed binding chosen modulo the number installed.
    Uninstall(usize),
}

fn order_op() -> impl Strategy<Value = OrderOp> {
    prop_oneof![
        5 => (0u8..3, prop::collection::vec(0usize..8, 0..2), prop::collection::vec(0usize..8, 0..2))
            .prop_map(|(position, before, after)| OrderOp::Install { position, before, after }),
        1 => (0usize..8).prop_map(OrderOp::Uninstall),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn dispatch_order_matches_the_model(ops in prop::collection::vec(order_op(), 4..16)) {
        let owner = principal("Prop.Order");
        let log = Arc::new(Mutex::new(Vec::<usize>::new()));
        let l = log.clone();
        // The event name must be unique among live events in this process.
        let name = format!("Prop.Order.E{}", owner.id().as_u32());
        let (event, _authority) =
            Event::<(), ()>::declare(&name, &owner, move |_| l.lock().unwrap().push(0)).unwrap();
        // Model label 0 is the original; labels grow with install order.
        let mut model = vec![ModelNode { label: 0, position: Position::Middle, before: vec![], after: vec![] }];
        let mut ids = vec![(0usize, BindingId::ORIGINAL)];
        let mut handles = Vec::new();
        let mut next_label = 1;
        for op in ops {
            match op {
                OrderOp::Install { position: code, before, after } => {
                    if model.len() >= 7 {
                        continue;
                    }
                    let pick = |i: usize| ids[i % ids.len()];
                    let before: Vec<(usize, BindingId)> = before.into_iter().map(pick).collect();
                    let after: Vec<(usize, BindingId)> = after.into_iter().map(pick).collect();
                    let label = next_label;
                    next_label += 1;
                    let mut candidate = model.clone();
                    candidate.push(ModelNode {
                        label,
                        position: position(code),
                        before: before.iter().map(|b| b.0).collect(),
                        after: after.iter().map(|a| a.0).collect(),
                    });
                    let expected = model_order(&candidate);
                    let l = log.clone();
                    let mut builder = event.binding(move |_| l.lock().unwrap().push(label));
                    builder = match position(code) {
                        Position::First => builder.first(),
                        Position::Middle => builder,
                        Position::Last => builder.last(),
                    };
                    for (_, id) in &before {
                        builder = builder.before(*id);
                    }
                    for (_, id) in &after {
                        builder = builder.after(*id);
                    }
                    match (builder.install(&owner), expected) {
                        (Ok(binding), Some(_)) => {
                            ids.push((label, binding.id()));
                            handles.push((label, binding));
                            model = candidate;
                        }
                        (Err(InstallError::Order(_)), None) => {}
                        (got, want) => prop_assert!(false, "install gave {:?}, model {:?}", got.map(|b| b.id()), want),
                    }
                }
                OrderOp::Uninstall(which) => {
                    if handles.is_empty() {
                        continue;
                    }
                    let (label, binding) = handles.remove(which % handles.len());
                    binding.uninstall().unwrap();
                    ids.retain(|(l, _)| *l != label);
                    model.retain(|n| n.label != label);
                    for n in &mut model {
                        n.before.retain(|&o| o != label);
                        n.after.retain(|&o| o != label);
                    }
                }
            }
            event.raise(&()).unwrap();
            let called = std::mem::take(&mut *log.lock().unwrap());
            prop_assert_eq!(Some(called), model_order(&model));
        }
    }
}

/// One binding in the guards/keys/Cancel/results model.
#[derive(Clone, Debug)]
struct Spec {
    position: u8,
    /// Guard: fires only when this bit of the argument is set.
    guard_bit: Option<u8>,
    /// Keyed binding (the event's key is `arg % 4`).
    key: Option<u64>,
    cancel: bool,
    value: i64,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0u8..3,
        prop::option::of(0u8..8),
        prop::option::of(0u64..4),
        prop::bool::weighted(0.2),
        -50i64..50,
    )
        .prop_map(|(position, guard_bit, key, cancel, value)| Spec {
            position,
            guard_bit,
            key,
            cancel,
            value,
        })
}

#[derive(Clone, Copy, Debug)]
enum Fold {
    Last,
    Sum,
    Max,
    FirstWins,
}

fn combine(fold: Fold, acc: i64, next: i64) -> i64 {
    match fold {
        Fold::Last => next,
        Fold::Sum => acc.wrapping_add(next),
        Fold::Max => acc.max(next),
        Fold::FirstWins => acc,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn guards_keys_cancel_and_folding_match_the_model(
        specs in prop::collection::vec(spec(), 0..10),
        original in prop::option::of(-50i64..50),
        fold in prop_oneof![Just(Fold::Last), Just(Fold::Sum), Just(Fold::Max), Just(Fold::FirstWins)],
        default in prop::option::of(-50i64..50),
        args in prop::collection::vec(any::<u8>(), 1..6),
    ) {
        let owner = principal("Prop.Fold");
        let name = format!("Prop.Fold.E{}", owner.id().as_u32());
        let log = Arc::new(Mutex::new(Vec::<usize>::new()));
        let mut builder = Event::<u8, i64>::builder(&name).key(|&arg| u64::from(arg % 4));
        if let Some(value) = original {
            let l = log.clone();
            builder = builder.original(move |_| {
                l.lock().unwrap().push(usize::MAX);
                value
            });
        }
        if !matches!(fold, Fold::Last) {
            builder = builder.result_handler(move |acc, next| combine(fold, acc, next));
        }
        if let Some(value) = default {
            builder = builder.default_result(value);
        }
        let (event, _authority) = builder.declare(&owner).unwrap();
        let mut handles = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            let l = log.clone();
            let value = spec.value;
            // Guards are part of the builder's type: every binding gets
            // one, which holds for all arguments when the spec has none.
            let guard_bit = spec.guard_bit;
            let mut b = event
                .binding(move |_| {
                    l.lock().unwrap().push(index);
                    value
                })
                .guard(move |&arg| guard_bit.is_none_or(|bit| arg >> bit & 1 == 1));
            b = match position(spec.position) {
                Position::First => b.first(),
                Position::Middle => b,
                Position::Last => b.last(),
            };
            if let Some(key) = spec.key {
                b = b.key(key);
            }
            if spec.cancel {
                b = b.cancel();
            }
            handles.push(b.install(&owner).unwrap());
        }

        // Reference order: bands, the original first in Middle, install order.
        let mut order: Vec<Option<usize>> = Vec::new();
        for band in [Position::First, Position::Middle, Position::Last] {
            if band == Position::Middle && original.is_some() {
                order.push(None);
            }
            order.extend((0..specs.len()).filter(|&i| position(specs[i].position) == band).map(Some));
        }
        for arg in args {
            let mut expected_calls = Vec::new();
            let mut result: Option<i64> = None;
            for entry in &order {
                let (label, value, cancel) = match *entry {
                    None => (usize::MAX, original.unwrap(), false),
                    Some(i) => {
                        let s = &specs[i];
                        let guard_ok = s.guard_bit.is_none_or(|bit| arg >> bit & 1 == 1);
                        let key_ok = s.key.is_none_or(|key| key == u64::from(arg % 4));
                        if !(guard_ok && key_ok) {
                            continue;
                        }
                        (i, s.value, s.cancel)
                    }
                };
                expected_calls.push(label);
                result = Some(match result {
                    None => value,
                    Some(acc) => combine(fold, acc, value),
                });
                if cancel {
                    break;
                }
            }
            let expected = match (result, default) {
                (Some(r), _) => Ok(r),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(RaiseError::NoHandlerFired),
            };
            prop_assert_eq!(event.raise(&arg), expected);
            prop_assert_eq!(std::mem::take(&mut *log.lock().unwrap()), expected_calls);
        }
        drop(handles);
    }
}

/// An installed binding of the large-event model: label, position, key,
/// handle.
type Live = (usize, Position, Option<u64>, dispatcher::Binding<u64, ()>);

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Many unconstrained bindings (so plans are updated a chunk at a
    /// time), keyed and unkeyed, installed and uninstalled at random: the
    /// calls follow (position, install order), the original first among
    /// `Middle`.
    #[test]
    fn large_unconstrained_events_keep_band_and_install_order(
        ops in prop::collection::vec((0u8..3, prop::option::of(0u64..3), any::<bool>(), 0usize..64), 20..160),
    ) {
        let owner = principal("Prop.Large");
        let name = format!("Prop.Large.E{}", owner.id().as_u32());
        let log = Arc::new(Mutex::new(Vec::<usize>::new()));
        let l = log.clone();
        let (event, _authority) = Event::<u64, ()>::builder(&name)
            .key(|&k| k)
            .original(move |_| l.lock().unwrap().push(0))
            .declare(&owner)
            .unwrap();
        let mut live: Vec<Live> = Vec::new();
        for (step, (code, key, uninstall, which)) in ops.into_iter().enumerate() {
            let label = step + 1;
            if uninstall && !live.is_empty() {
                let (_, _, _, binding) = live.remove(which % live.len());
                binding.uninstall().unwrap();
            } else {
                let l = log.clone();
                let mut builder = event.binding(move |_| l.lock().unwrap().push(label));
                builder = match position(code) {
                    Position::First => builder.first(),
                    Position::Middle => builder,
                    Position::Last => builder.last(),
                };
                if let Some(key) = key {
                    builder = builder.key(key);
                }
                live.push((label, position(code), key, builder.install(&owner).unwrap()));
            }
            for raise_key in 0..4u64 {
                let mut expected = Vec::new();
                for band in [Position::First, Position::Middle, Position::Last] {
                    if band == Position::Middle {
                        expected.push(0);
                    }
                    expected.extend(
                        live.iter()
                            .filter(|(_, p, k, _)| *p == band && k.is_none_or(|k| k == raise_key))
                            .map(|(label, ..)| *label),
                    );
                }
                event.raise(&raise_key).unwrap();
                prop_assert_eq!(std::mem::take(&mut *log.lock().unwrap()), expected);
            }
        }
    }
}
