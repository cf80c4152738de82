//! The meta agent: makes a child of this hyperagent.
//!
//! For bin packing it searches over programs (`search.rs`): it edits the priority function's
//! syntax tree with typed operators whose weights come from its strategy (`strategy.rs`, which it
//! may rewrite in its child) and from what `/history` credits them with. A run with a judgement
//! domain goes to `judging.rs`, one with robot reward design to `reward_design.rs`. When the host offers an LLM, it asks for a rewrite of
//! `src/priority.rs` instead, and falls back to program search when the answer is unusable.
//!
//! Constants on a line ending in `// evolve lo..hi` are genes: the helpers below find them and
//! mutate one, credited by the score changes its past mutations caused, with the step settings
//! below. The program search uses them for its own strategy and the priority file's constants.

use agent_sdk::history::History;
use agent_sdk::repo::Repo;
use agent_sdk::rng::Rng;
use agent_sdk::serde_json::Value;
use agent_sdk::{AgentError, MetaReport, MetaRequest, llm, log};

/// Size of a mutation step, as a fraction of the gene's range.
pub const STEP: f64 = 0.15; // evolve 0.01..0.5
/// Probability of drawing a gene afresh from its range instead of stepping.
pub const RESET_PROBABILITY: f64 = 0.15; // evolve 0.0..0.6
/// Probability of stepping in the direction that improved the score before, when one is known.
pub const FOLLOW_DIRECTION: f64 = 0.7; // evolve 0.0..1.0
/// How much past improvements attract further mutations of the same gene.
pub const CREDIT_WEIGHT: f64 = 50.0; // evolve 0.0..500.0

pub(crate) const TASK_FILE: &str = "src/priority.rs";
pub(crate) const NOTES: &str = "NOTES.md";
/// Bounds on `NOTES.md`: the longest line kept, and the size the file is kept under.
const MAX_NOTE_LINE_CHARS: usize = 400;
const MAX_NOTES_BYTES: usize = 16 * 1024;

/// One evolvable constant found in a source file.
#[derive(Debug, Clone)]
pub(crate) struct Gene {
    file: &'static str,
    line: usize,
    name: String,
    value: f64,
    lo: f64,
    hi: f64,
}

impl Gene {
    /// The constant's name and value.
    pub(crate) fn name_value(&self) -> (String, f64) {
        (self.name.clone(), self.value)
    }
}

/// One change, as written in a meta report's summary: `file NAME: old -> new`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    file: String,
    name: String,
    old: f64,
    new: f64,
}

pub fn improve(request: &MetaRequest) -> Result<MetaReport, AgentError> {
    let repo = Repo::open(&request.repo_dir);
    let history = History::open(&request.history_dir);
    let lineage = read_lineage(&history);
    if crate::judging::applies(&history) {
        return crate::judging::improve(request, &repo, &history, &lineage);
    }
    if crate::reward_design::applies(&history) {
        return crate::reward_design::improve(request, &repo, &history, &lineage);
    }

    if llm::available() {
        match crate::conversation::improve(&repo, &history, &lineage) {
            Ok(report) => return Ok(report),
            Err(why) => log::warn(format!("LLM rewrite unusable, mutating instead: {why}")),
        }
    }

    crate::search::improve(request, &repo, &history, &lineage)
}

/// (summary, score) of each ancestor, root first, as the host wrote them.
fn read_lineage(history: &History) -> Vec<(String, Option<f64>)> {
    let Ok(value) = history.read_json::<Value>("lineage.json") else { return Vec::new() };
    value
        .as_array()
        .map(|nodes| {
            nodes.iter().map(|n| (n["summary"].as_str().unwrap_or("").to_owned(), n["score"].as_f64())).collect()
        })
        .unwrap_or_default()
}

/// For each gene, the summed score change its mutations caused and the direction that helped.
pub(crate) fn credit_genes(lineage: &[(String, Option<f64>)]) -> Vec<(String, f64, f64)> {
    let mut credit: Vec<(String, f64, f64)> = Vec::new();
    for pair in lineage.windows(2) {
        let (Some(before), Some(after)) = (pair[0].1, pair[1].1) else { continue };
        let delta = after - before;
        for change in parse_changes(&pair[1].0) {
            let direction = (change.new - change.old).signum() * delta.signum();
            match credit.iter_mut().find(|(name, _, _)| *name == change.name) {
                Some(entry) => {
                    entry.1 += delta;
                    entry.2 = direction;
                }
                None => credit.push((change.name.clone(), delta, direction)),
            }
        }
    }
    credit
}

fn parse_changes(summary: &str) -> Vec<Change> {
    summary
        .split(';')
        .filter_map(|part| {
            let (file, rest) = part.trim().split_once(' ')?;
            let (name, values) = rest.split_once(':')?;
            let (old, new) = values.split_once("->")?;
            Some(Change {
                file: file.to_owned(),
                name: name.trim().to_owned(),
                old: old.trim().parse().ok()?,
                new: new.trim().parse().ok()?,
            })
        })
        .collect()
}

pub(crate) fn render_change(change: &Change) -> String {
    format!("{} {}: {:?} -> {:?}", change.file, change.name, change.old, change.new)
}

pub(crate) fn genes(repo: &Repo, file: &'static str) -> Result<Vec<Gene>, AgentError> {
    let source = repo.read(file).map_err(|e| AgentError::Failed(format!("cannot read {file}: {e}")))?;
    let genes: Vec<Gene> = source
        .lines()
        .enumerate()
        .filter_map(|(line, text)| {
            let (code, marker) = text.split_once("// evolve")?;
            let (lo, hi) = marker.trim().split_once("..")?;
            let (head, value) = code.split_once('=')?;
            let name = head.trim().trim_start_matches("pub").trim().trim_start_matches("const").trim();
            let name = name.split(':').next()?.trim().to_owned();
            Some(Gene {
                file,
                line,
                name,
                value: value.trim().trim_end_matches(';').trim().parse().ok()?,
                lo: lo.trim().parse().ok()?,
                hi: hi.trim().parse().ok()?,
            })
        })
        .collect();
    if genes.is_empty() {
        return Err(AgentError::Failed(format!("{file} has no line marked `// evolve lo..hi`")));
    }
    Ok(genes)
}

/// Mutates one gene of a file (chosen by credit) and writes the file back.
pub(crate) fn mutate_one(
    repo: &Repo,
    genes: &[Gene],
    credit: &[(String, f64, f64)],
    rng: &mut Rng,
) -> Result<Change, AgentError> {
    let credit_of = |name: &str| credit.iter().find(|(n, _, _)| n == name);
    let weights: Vec<f64> =
        genes.iter().map(|g| 1.0 + CREDIT_WEIGHT * credit_of(&g.name).map_or(0.0, |c| c.1.max(0.0))).collect();
    let mut pick = rng.unit() * weights.iter().sum::<f64>();
    let mut chosen = &genes[genes.len() - 1];
    for (gene, weight) in genes.iter().zip(&weights) {
        if pick < *weight {
            chosen = gene;
            break;
        }
        pick -= weight;
    }
    let span = chosen.hi - chosen.lo;
    let new = if rng.chance(RESET_PROBABILITY) {
        chosen.lo + rng.unit() * span
    } else {
        // Roughly normal: the sum of three uniforms, centred.
        let mut step = (rng.unit() + rng.unit() + rng.unit() - 1.5) * 2.0 * STEP * span;
        if let Some((_, _, direction)) = credit_of(&chosen.name)
            && *direction != 0.0
            && rng.chance(FOLLOW_DIRECTION)
        {
            step = step.abs() * direction;
        }
        chosen.value + step
    };
    // Four decimals keep the source readable and the summary parseable.
    let round = |v: f64| (v.clamp(chosen.lo, chosen.hi) * 10_000.0).round() / 10_000.0;
    let mut new = round(new);
    if new == chosen.value {
        // A step that the range's edge swallowed changes nothing: draw afresh instead.
        new = round(chosen.lo + rng.unit() * span);
    }
    let source = repo.read(chosen.file).map_err(|e| AgentError::Failed(format!("cannot read {}: {e}", chosen.file)))?;
    let mut lines: Vec<String> = source.lines().map(str::to_owned).collect();
    let text = &lines[chosen.line];
    let (head, _) = text.split_once('=').expect("a gene line has `=`");
    let (_, marker) = text.split_once("// evolve").expect("a gene line has a marker");
    lines[chosen.line] = format!("{head}= {new:?}; // evolve{marker}");
    repo.write(chosen.file, &(lines.join("\n") + "\n"))
        .map_err(|e| AgentError::Failed(format!("cannot write {}: {e}", chosen.file)))?;
    Ok(Change { file: chosen.file.to_owned(), name: chosen.name.clone(), old: chosen.value, new })
}

/// Appends a line to `NOTES.md`, which every child inherits and the LLM prompt quotes: each line is
/// cut to [`MAX_NOTE_LINE_CHARS`] (it may quote an LLM's answer) and the oldest lines go once the
/// file would pass [`MAX_NOTES_BYTES`], so a long lineage keeps its notes and prompts bounded.
pub(crate) fn append_note(repo: &Repo, line: &str) -> std::io::Result<()> {
    let notes = repo.read(NOTES).unwrap_or_default();
    let mut lines: Vec<&str> = notes.lines().collect();
    let line = format!("- {}", line.chars().take(MAX_NOTE_LINE_CHARS).collect::<String>());
    lines.push(&line);
    let mut kept = lines.len();
    let mut bytes = 0;
    for (index, l) in lines.iter().enumerate().rev() {
        bytes += l.len() + 1;
        if bytes > MAX_NOTES_BYTES {
            break;
        }
        kept = index;
    }
    repo.write(NOTES, &(lines[kept..].join("\n") + "\n"))
}
