//! Online bin packing as in FunSearch (Romera-Paredes et al., Nature 2023): items arrive one at a
//! time and each goes into an open bin or a new one.
//!
//! Metric: for one instance, the fraction of excess bins over the L1 lower bound
//! `ceil(sum of sizes / capacity)`. A task's score is `1 - excess` (clamped at 0), so a packing
//! that meets the bound scores 1; the evolutionary loop maximises the mean task score of a split.
//! Test sets are reported as FunSearch reports them: the excess of the mean number of bins over
//! the mean bound ([`set_excess`]).
//!
//! Data: OR-Library binpack1–4 (Falkenauer's "u" instances, 20 each of 120/250/500/1000 items,
//! capacity 150) and FunSearch's Weibull 5k set (5 instances of 5,000 items, capacity 100) are read
//! from a data directory; Weibull instances as FunSearch defines them (sizes from Weibull with
//! scale 45 and shape 3, clipped to [1, 100], rounded, capacity 100) are generated from a seed.
//!
//! Task protocol: the payload is `{"capacity": C, "items": [...]}` in arrival order; the answer is
//! `{"bins": [b_0, b_1, ...]}`, the bin of each item, bins numbered from 0.

mod plugin;

pub use plugin::{BinPacking, Settings};

use crate::{Task, TaskScore};
use serde_json::{Value, json};
use std::path::Path;

pub const DOMAIN: &str = "bin_packing";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub capacity: u64,
    pub items: Vec<u64>,
}

impl Instance {
    /// The L1 lower bound on the number of bins.
    pub fn l1_bound(&self) -> u64 {
        self.items.iter().sum::<u64>().div_ceil(self.capacity)
    }

    pub fn payload(&self) -> String {
        json!({"capacity": self.capacity, "items": self.items}).to_string()
    }
}

/// A named group of instances (a test set, a split).
#[derive(Debug, Clone)]
pub struct InstanceSet {
    pub name: String,
    pub instances: Vec<Instance>,
}

impl InstanceSet {
    pub fn tasks(&self, split: &str) -> Vec<Task> {
        self.instances
            .iter()
            .map(|i| Task { id: format!("{split}/{}/{}", self.name, i.name), payload: i.payload() })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {reason}")]
    Format { path: String, reason: String },
}

/// Parses the OR-Library format: the number of problems, then per problem its id, a line
/// `capacity n best_known`, and n item sizes.
pub fn parse_orlib(text: &str, path: &str) -> Result<Vec<Instance>, DataError> {
    let bad = |reason: String| DataError::Format { path: path.to_owned(), reason };
    let mut words = text.split_whitespace();
    let mut number = |what: &str| -> Result<u64, DataError> {
        let word = words.next().ok_or_else(|| bad(format!("ended while reading {what}")))?;
        word.parse().map_err(|_| bad(format!("`{word}` is not a number ({what})")))
    };
    let count = number("the problem count")?;
    let mut instances = Vec::new();
    for _ in 0..count {
        // Ids are words, not numbers: read them through the same iterator.
        let name = words.next().ok_or_else(|| bad("ended while reading a problem id".into()))?.to_owned();
        let mut number = |what: &str| -> Result<u64, DataError> {
            let word = words.next().ok_or_else(|| bad(format!("ended while reading {what} of {name}")))?;
            word.parse().map_err(|_| bad(format!("`{word}` is not a number ({what} of {name})")))
        };
        let capacity = number("capacity")?;
        let n = number("item count")?;
        let _best_known = number("best known")?;
        let items = (0..n).map(|_| number("item")).collect::<Result<Vec<_>, _>>()?;
        if capacity == 0 || items.iter().any(|&s| s == 0 || s > capacity) {
            return Err(bad(format!("{name}: item sizes must be in 1..=capacity")));
        }
        instances.push(Instance { name, capacity, items });
    }
    Ok(instances)
}

/// Parses FunSearch's JSON re-encoding: `{name: {capacity, num_items, items}}`, sorted by name.
pub fn parse_funsearch_json(text: &str, path: &str) -> Result<Vec<Instance>, DataError> {
    let bad = |reason: String| DataError::Format { path: path.to_owned(), reason };
    let value: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let object = value.as_object().ok_or_else(|| bad("the top level is not an object".into()))?;
    let mut instances = Vec::new();
    for (name, instance) in object {
        let capacity = instance["capacity"].as_u64().ok_or_else(|| bad(format!("{name}: no capacity")))?;
        if capacity == 0 {
            return Err(bad(format!("{name}: the capacity is 0")));
        }
        let items: Vec<u64> = instance["items"]
            .as_array()
            .ok_or_else(|| bad(format!("{name}: no items")))?
            .iter()
            .map(|v| v.as_u64().ok_or_else(|| bad(format!("{name}: an item is not an integer"))))
            .collect::<Result<_, _>>()?;
        if items.iter().any(|&s| s == 0 || s > capacity) {
            return Err(bad(format!("{name}: item sizes must be in 1..=capacity")));
        }
        if instance["num_items"].as_u64() != Some(items.len() as u64) {
            return Err(bad(format!("{name}: num_items does not match the item list")));
        }
        instances.push(Instance { name: name.clone(), capacity, items });
    }
    instances.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(instances)
}

/// The published test sets: OR1–OR4 and Weibull 5k, read from `data_dir/bin_packing`.
pub fn published_sets(data_dir: &Path) -> Result<Vec<InstanceSet>, DataError> {
    let dir = data_dir.join("bin_packing");
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| DataError::Io { path: path.display().to_string(), source })
    };
    let mut sets = Vec::new();
    for k in 1..=4 {
        let file = format!("orlib_binpack{k}.txt");
        sets.push(InstanceSet { name: format!("OR{k}"), instances: parse_orlib(&read(&file)?, &file)? });
    }
    let file = "funsearch_weibull5k.json";
    sets.push(InstanceSet { name: "Weibull 5k".into(), instances: parse_funsearch_json(&read(file)?, file)? });
    Ok(sets)
}

/// FunSearch's larger Weibull test sets, generated (the published data holds only the 5k set):
/// 5 instances of 10,000 items and 1 of 100,000, from fixed seeds so every run sees the same ones.
pub fn generated_test_sets() -> Vec<InstanceSet> {
    vec![weibull_set("Weibull 10k", 10_000, 5, 10_000), weibull_set("Weibull 100k", 100_000, 1, 100_000)]
}

/// Every test set by name: the published ones and the generated ones.
pub fn test_sets(data_dir: &Path, names: &[String]) -> Result<Vec<InstanceSet>, DataError> {
    let mut sets = published_sets(data_dir)?;
    if names.iter().any(|n| n.starts_with("Weibull 10")) {
        sets.extend(generated_test_sets());
    }
    Ok(sets.into_iter().filter(|s| names.contains(&s.name)).collect())
}

/// The data files a run reads, for provenance: (file name, bytes).
pub fn data_files(data_dir: &Path) -> Result<Vec<(String, Vec<u8>)>, DataError> {
    let dir = data_dir.join("bin_packing");
    ["orlib_binpack1.txt", "orlib_binpack2.txt", "orlib_binpack3.txt", "orlib_binpack4.txt", "funsearch_weibull5k.json"]
        .iter()
        .map(|name| {
            let path = dir.join(name);
            std::fs::read(&path)
                .map(|bytes| (format!("bin_packing/{name}"), bytes))
                .map_err(|source| DataError::Io { path: path.display().to_string(), source })
        })
        .collect()
}

/// A uniform stream from a seed (blake3 in extendable-output mode), stable across platforms.
struct SeedStream(blake3::OutputReader);

impl SeedStream {
    fn new(seed: u64, purpose: &str) -> SeedStream {
        let mut hasher = blake3::Hasher::new_derive_key("hyperagent bin_packing weibull v1");
        hasher.update(&seed.to_le_bytes());
        hasher.update(purpose.as_bytes());
        SeedStream(hasher.finalize_xof())
    }

    /// A float in (0, 1).
    fn open_unit(&mut self) -> f64 {
        let mut bytes = [0u8; 8];
        self.0.fill(&mut bytes);
        ((u64::from_le_bytes(bytes) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// A Weibull instance as FunSearch defines it: sizes from Weibull(scale 45, shape 3) by inverse
/// transform sampling, clipped to [1, 100], rounded to integers; capacity 100.
pub fn weibull_instance(name: &str, seed: u64, items: usize) -> Instance {
    const SCALE: f64 = 45.0;
    const SHAPE: f64 = 3.0;
    let mut stream = SeedStream::new(seed, name);
    let items = (0..items)
        .map(|_| {
            let u = stream.open_unit();
            let size = SCALE * (-(1.0 - u).ln()).powf(1.0 / SHAPE);
            size.clamp(1.0, 100.0).round() as u64
        })
        .collect();
    Instance { name: name.to_owned(), capacity: 100, items }
}

/// An instance like OR-Library's "u" instances (Falkenauer 1996): item sizes uniform in
/// [20, 100], capacity 150; generated from a seed where the published data is missing.
pub fn uniform_instance(name: &str, seed: u64, items: usize) -> Instance {
    let mut stream = SeedStream::new(seed, name);
    let items = (0..items).map(|_| 20 + (stream.open_unit() * 81.0).floor().min(80.0) as u64).collect();
    Instance { name: name.to_owned(), capacity: 150, items }
}

/// A family of generated instances: how training and validation instances are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// FunSearch's Weibull instances (capacity 100), like the Weibull test sets.
    Weibull,
    /// Sizes uniform in [20, 100], capacity 150, like OR-Library's binpack1–4.
    Or,
}

/// Generated instances of `families`, interleaved (instance `i` is of family `i mod n`), so every
/// prefix, such as a staged sample, holds as many families as it can. Instances have `items`
/// items, but OR-family ones take their sizes from `or_items` in turn when it is not empty. With
/// one family and no `or_items` this is that family's set: `weibull_set` for Weibull.
pub fn generated_set(
    name: &str,
    seed: u64,
    count: usize,
    items: usize,
    or_items: &[usize],
    families: &[Family],
) -> InstanceSet {
    assert!(!families.is_empty(), "a generated set needs a family");
    let instances = (0..count)
        .map(|i| {
            let (instance, seed) = (format!("{name}_{i:02}"), seed.wrapping_add(i as u64));
            match families[i % families.len()] {
                Family::Weibull => weibull_instance(&instance, seed, items),
                Family::Or if or_items.is_empty() => uniform_instance(&instance, seed, items),
                // The k-th OR instance of the set.
                Family::Or => uniform_instance(&instance, seed, or_items[(i / families.len()) % or_items.len()]),
            }
        })
        .collect();
    InstanceSet { name: name.to_owned(), instances }
}

/// A set of generated Weibull instances.
pub fn weibull_set(name: &str, seed: u64, count: usize, items: usize) -> InstanceSet {
    let instances =
        (0..count).map(|i| weibull_instance(&format!("{name}_{i:02}"), seed.wrapping_add(i as u64), items)).collect();
    InstanceSet { name: name.to_owned(), instances }
}

/// Checks an answer and scores it: every item placed exactly once, no bin over capacity.
pub fn score(instance: &Instance, output: &str) -> TaskScore {
    // The sandbox checked the output with this same reader; an answer read here directly (as in
    // replay or fuzzing) meets the same rule.
    let value = match crate::json::parse_strict(output) {
        Ok(value) => value,
        Err(e) => return TaskScore::invalid(format!("the answer is refused: {e}")),
    };
    let Some(bins) = value.get("bins").and_then(Value::as_array) else {
        return TaskScore::invalid("the answer has no `bins` array");
    };
    if bins.len() != instance.items.len() {
        return TaskScore::invalid(format!(
            "{} items were placed but the instance has {}: every item must be placed exactly once",
            bins.len(),
            instance.items.len()
        ));
    }
    let mut assignment = Vec::with_capacity(bins.len());
    for (index, bin) in bins.iter().enumerate() {
        // A bin number beyond the item count cannot be needed and would let an answer make the
        // host allocate without bound.
        match bin.as_u64() {
            Some(b) if (b as usize) < instance.items.len() => assignment.push(b as usize),
            _ => {
                return TaskScore::invalid(format!(
                    "item {index}: `{bin}` is not a bin number in 0..{}",
                    instance.items.len()
                ));
            }
        }
    }
    match bins_used(instance, &assignment) {
        Ok(used) => TaskScore {
            score: task_score(instance, used),
            invalid: None,
            details: json!({"bins": used, "l1_bound": instance.l1_bound(), "excess": excess(instance, used)}),
        },
        Err(reason) => TaskScore::invalid(reason),
    }
}

/// Number of bins an assignment uses, or why it is not a packing.
pub fn bins_used(instance: &Instance, assignment: &[usize]) -> Result<u64, String> {
    let mut load = vec![0u64; instance.items.len()];
    for (index, (&bin, &size)) in assignment.iter().zip(&instance.items).enumerate() {
        load[bin] += size;
        if load[bin] > instance.capacity {
            return Err(format!(
                "item {index} overfills bin {bin}: load {} exceeds capacity {}",
                load[bin], instance.capacity
            ));
        }
    }
    Ok(load.iter().filter(|&&l| l > 0).count() as u64)
}

/// Packs online: `choose` picks an open bin (by index into the free room of each bin) for the
/// arriving item, or none to open a new one. Returns the bin of each item.
fn pack_online(instance: &Instance, choose: impl Fn(&[u64], u64) -> Option<usize>) -> Vec<usize> {
    let mut free: Vec<u64> = Vec::new();
    instance
        .items
        .iter()
        .map(|&size| match choose(&free, size) {
            Some(bin) => {
                free[bin] -= size;
                bin
            }
            None => {
                free.push(instance.capacity - size);
                free.len() - 1
            }
        })
        .collect()
}

/// A host-side packing heuristic.
pub type Packer = fn(&Instance) -> Vec<usize>;

/// The baselines FunSearch's Table 1 reports, by name.
pub const BASELINES: [(&str, Packer); 2] = [("first fit", first_fit), ("best fit", best_fit)];

/// First fit: each item into the lowest-numbered bin it fits in.
pub fn first_fit(instance: &Instance) -> Vec<usize> {
    pack_online(instance, |free, size| free.iter().position(|&f| f >= size))
}

/// Best fit: each item into the fitting bin with the least room left (lowest-numbered on ties).
pub fn best_fit(instance: &Instance) -> Vec<usize> {
    pack_online(instance, |free, size| {
        free.iter().enumerate().filter(|(_, f)| **f >= size).min_by_key(|(bin, f)| (**f, *bin)).map(|(bin, _)| bin)
    })
}

/// The excess over the L1 bound of a packing that uses `bins` bins, as a fraction.
pub fn excess(instance: &Instance, bins: u64) -> f64 {
    let bound = instance.l1_bound() as f64;
    (bins as f64 - bound) / bound
}

/// A task's score for a packing of `bins` bins: `1 - excess`, clamped to [0, 1].
pub fn task_score(instance: &Instance, bins: u64) -> f64 {
    (1.0 - excess(instance, bins)).clamp(0.0, 1.0)
}

/// Excess of a set, as a fraction: (mean bins used − mean L1 bound) / mean L1 bound. This is how
/// FunSearch's published evaluation aggregates a set (its notebook compares the average number of
/// bins with the average L1 bound), and the form that reproduces its Table 1 to the printed
/// precision; the mean of per-instance excesses differs in the second decimal on OR1.
pub fn set_excess(instances: &[Instance], bins: &[u64]) -> f64 {
    let used: u64 = bins.iter().sum();
    let bound: u64 = instances.iter().map(Instance::l1_bound).sum();
    (used as f64 - bound as f64) / bound as f64
}

/// The bins a host-side packer uses on each instance of a set.
pub fn packer_bins(set: &InstanceSet, packer: impl Fn(&Instance) -> Vec<usize>) -> Vec<u64> {
    set.instances
        .iter()
        .map(|instance| bins_used(instance, &packer(instance)).expect("baselines produce valid packings"))
        .collect()
}

/// Excess of a packer on a set (see [`set_excess`]).
pub fn mean_excess(set: &InstanceSet, packer: impl Fn(&Instance) -> Vec<usize>) -> f64 {
    set_excess(&set.instances, &packer_bins(set, packer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Instance {
        Instance { name: "t".into(), capacity: 10, items: vec![6, 5, 4, 5] }
    }

    #[test]
    fn valid_packings_score_by_excess() {
        // L1 = ceil(20 / 10) = 2.
        let perfect = score(&tiny(), r#"{"bins":[0,1,0,1]}"#);
        assert_eq!((perfect.score, perfect.invalid.clone()), (1.0, None));
        let three = score(&tiny(), r#"{"bins":[0,1,2,1]}"#);
        assert!((three.score - 0.5).abs() < 1e-12, "{three:?}");
    }

    #[test]
    fn invalid_packings_score_zero_with_a_reason() {
        for (answer, words) in [
            (r#"{"bins":[0,0,1,1]}"#, "overfills bin 0"),
            (r#"{"bins":[0,1,0]}"#, "every item must be placed exactly once"),
            (r#"{"bins":[0,1,0,1,2]}"#, "every item must be placed exactly once"),
            (r#"{"bins":[0,1,0,-1]}"#, "not a bin number"),
            (r#"{"bins":[0,1,0,99999999999]}"#, "not a bin number"),
            (r#"{"bins":[0,1,0,"1"]}"#, "not a bin number"),
            (r#"{"nope":1}"#, "no `bins` array"),
            ("not json", "not JSON"),
            (r#"{"bins":[0,1,0,1],"bins":[0,0,0,0]}"#, "duplicate key"),
            (r#"{"bins":[0,1,0,1e999]}"#, "number out of range"),
        ] {
            let scored = score(&tiny(), answer);
            assert_eq!(scored.score, 0.0, "{answer}");
            let reason = scored.invalid.unwrap_or_default();
            assert!(reason.contains(words), "{answer}: {reason}");
        }
    }

    #[test]
    fn weibull_generator_is_seeded_and_in_range() {
        let a = weibull_instance("w", 1, 5000);
        assert_eq!(a, weibull_instance("w", 1, 5000));
        assert_ne!(a.items, weibull_instance("w", 2, 5000).items);
        assert!(a.items.iter().all(|&s| (1..=100).contains(&s)));
        // Weibull(45, 3) has mean 45 * Gamma(4/3) = 40.19.
        let mean = a.items.iter().sum::<u64>() as f64 / a.items.len() as f64;
        assert!((mean - 40.19).abs() < 1.0, "{mean}");
    }

    #[test]
    fn generated_sets_interleave_their_families() {
        let mixed = generated_set("train", 9, 4, 300, &[], &[Family::Weibull, Family::Or]);
        let capacities: Vec<u64> = mixed.instances.iter().map(|i| i.capacity).collect();
        assert_eq!(capacities, [100, 150, 100, 150]);
        assert!(mixed.instances[1].items.iter().all(|&s| (20..=100).contains(&s)));
        let weibull = generated_set("train", 9, 3, 300, &[120, 250], &[Family::Weibull]);
        assert_eq!(weibull.instances, weibull_set("train", 9, 3, 300).instances, "one family: the old protocol");
        let sized = generated_set("train", 9, 6, 300, &[120, 250], &[Family::Weibull, Family::Or]);
        let lengths: Vec<usize> = sized.instances.iter().map(|i| i.items.len()).collect();
        assert_eq!(lengths, [300, 120, 300, 250, 300, 120], "OR instances take their sizes in turn");
        let or_only = generated_set("train", 9, 3, 300, &[120, 250], &[Family::Or]);
        assert_eq!(or_only.instances.iter().map(|i| i.items.len()).collect::<Vec<_>>(), [120, 250, 120]);
    }

    #[test]
    fn orlib_parser_reads_the_format() {
        let text = "2\n u1\n 10 3 2\n5\n5\n4\n u2\n 10 1 1\n7\n";
        let parsed = parse_orlib(text, "x").unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0], Instance { name: "u1".into(), capacity: 10, items: vec![5, 5, 4] });
        assert!(parse_orlib("1\n u1\n 10 2 1\n5\n", "x").is_err());
        assert!(parse_orlib("1\n u1\n 10 1 1\n11\n", "x").is_err());
    }
}
