//! Which rules' path patterns match a path: the candidates of an
//! evaluation, found in one walk over the path's segments.
//!
//! Templates (the common case) go into a tree of whole segments: literals
//! (compared ASCII-case-insensitively where the rule says so), one `{name}`
//! child that takes any segment, and a trailing `**` that takes the rest.
//! A lookup walks the path's segments once, so its cost grows with the
//! path, not with the number of rules. Whole-path regexes, templates with
//! `**` before the end, templates with non-ASCII literals (which a
//! case-insensitive regex folds beyond ASCII) and rules without a path
//! go into a `RegexSet` beside it; a rule is a candidate when either says
//! so. Both read the same anchored patterns, and a property test holds
//! the tree to what the regexes match.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use regex::{RegexSet, RegexSetBuilder};

use super::pattern::{segments, template_segments, PathPattern};
use crate::ascii::eq_lowercase;
pub use candidates::Candidates;

/// The literals of one lowercase form, as the rules spelled them, and the
/// node under each.
type Spellings = Vec<(Literal, Node)>;

/// One node of the tree: the rules whose template ends here.
#[derive(Debug, Default)]
struct Node {
    /// Literal segments, by their lowercase form; each entry says whether
    /// the rules under it compare case-insensitively.
    literals: Vec<(Box<str>, Spellings)>,
    /// Where each lowercase form is in `literals`, for a node with more
    /// than [`FEW`] of them (empty otherwise: those are compared in turn).
    by_key: HashMap<Box<str>, usize, BuildHasherDefault<Fnv>>,
    /// `{name}`: any segment.
    capture: Option<Box<Node>>,
    /// Rules whose template ends here (a trailing `/` is accepted).
    ends: Vec<usize>,
    /// Rules whose template ends here with `**`: any further segments.
    rest: Vec<usize>,
}

/// FNV-1a: path segments are short, and a keyed hash costs more than the
/// lookup it serves. The keys are the operator's own literals, so there is
/// no one to flood the table.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A literal segment as a rule wrote it.
#[derive(Debug, PartialEq, Eq)]
struct Literal {
    text: Box<str>,
    case_insensitive: bool,
}

impl Literal {
    /// Whether `segment`, already known to equal this literal with ASCII
    /// case folded (it matched the literal's lowercase key), matches it.
    fn matches_folded(&self, segment: &str) -> bool {
        self.case_insensitive || *self.text == *segment
    }
}

/// The candidate rules of every path.
#[derive(Debug)]
pub struct Index {
    root: Node,
    /// The rules the tree does not hold, by position in `others`.
    others: Vec<usize>,
    /// Whether the tree holds each rule (by rule index).
    in_tree: Vec<bool>,
    /// Their anchored regexes.
    set: Option<RegexSet>,
}

/// Why an index cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("the rule set's patterns cannot be combined: {0}")]
pub struct IndexError(String);

impl Index {
    /// Indexes `patterns` (rule `i` has pattern `patterns[i]`, its anchored
    /// regex source `sources[i]`).
    pub fn new(patterns: &[Option<&PathPattern>], sources: &[String]) -> Result<Index, IndexError> {
        let mut root = Node::default();
        let mut others = Vec::new();
        let mut in_tree = vec![true; patterns.len()];
        for (i, p) in patterns.iter().enumerate() {
            if !p.is_some_and(|p| insert(&mut root, i, p)) {
                others.push(i);
                in_tree[i] = false;
            }
        }
        narrow(&mut root);
        let set = if others.is_empty() {
            None
        } else {
            Some(
                RegexSetBuilder::new(others.iter().map(|&i| sources[i].as_str()))
                    .size_limit(256 << 20)
                    .dfa_size_limit(64 << 20)
                    .build()
                    .map_err(|e| IndexError(e.to_string()))?,
            )
        };
        Ok(Index {
            root,
            others,
            in_tree,
            set,
        })
    }

    /// Whether the tree holds `rule`: a path it finds for the rule matched
    /// the rule's template segment by segment, literals included.
    pub fn holds(&self, rule: usize) -> bool {
        self.in_tree.get(rule).copied().unwrap_or(false)
    }

    /// The rules whose pattern matches `path` (a canonical path), in rule
    /// order.
    pub fn candidates(&self, path: &str) -> Vec<usize> {
        let mut segs = Vec::with_capacity(16);
        segments(path, &mut segs);
        self.candidates_of(path, &segs).iter().collect()
    }

    /// [`Index::candidates`] of a path already split by [`segments`].
    pub fn candidates_of(&self, path: &str, segs: &[&str]) -> Candidates {
        let mut out = Candidates::default();
        if path.starts_with('/') {
            walk(&self.root, segs, &mut out);
        }
        if let Some(set) = &self.set {
            out.extend(set.matches(path).iter().map(|k| self.others[k]));
        }
        if out.len() > 1 {
            out.sort_dedup();
        }
        out
    }
}

/// Adds a template to the tree; false when the tree cannot hold it.
fn insert(root: &mut Node, rule: usize, pattern: &PathPattern) -> bool {
    let Some((segs, open, case_insensitive)) = template_segments(pattern) else {
        return false;
    };
    if segs
        .iter()
        .any(|s| s.is_empty() || s.contains("**") || !s.is_ascii())
    {
        return false;
    }
    let mut node = root;
    for seg in segs {
        node = if seg.starts_with('{') {
            node.capture.get_or_insert_with(Box::default)
        } else {
            let literal = Literal {
                text: seg.into(),
                case_insensitive,
            };
            let key = seg.to_ascii_lowercase().into_boxed_str();
            let at = *node.by_key.entry(key.clone()).or_insert_with(|| {
                node.literals.push((key, Vec::new()));
                node.literals.len() - 1
            });
            let entries = &mut node.literals[at].1;
            let at = match entries.iter().position(|(l, _)| *l == literal) {
                Some(at) => at,
                None => {
                    entries.push((literal, Node::default()));
                    entries.len() - 1
                }
            };
            &mut entries[at].1
        };
    }
    if open {
        node.rest.push(rule);
    } else {
        node.ends.push(rule);
    }
    true
}

/// Drops the key index of every node with few literals.
fn narrow(node: &mut Node) {
    if node.literals.len() <= FEW {
        node.by_key = HashMap::default();
    }
    for (_, entries) in &mut node.literals {
        for (_, child) in entries {
            narrow(child);
        }
    }
    if let Some(c) = &mut node.capture {
        narrow(c);
    }
}

/// Up to this many literal children are compared one by one.
const FEW: usize = 8;

/// The literals of `node` whose lowercase form is `segment`'s, by hash.
fn lookup<'n>(node: &'n Node, segment: &str) -> Option<&'n (Box<str>, Spellings)> {
    let mut lower = [0u8; 64];
    let at = if segment.len() <= lower.len() {
        for (d, s) in lower.iter_mut().zip(segment.bytes()) {
            *d = s.to_ascii_lowercase();
        }
        std::str::from_utf8(&lower[..segment.len()])
            .ok()
            .and_then(|k| node.by_key.get(k))
    } else {
        node.by_key.get(segment.to_ascii_lowercase().as_str())
    };
    at.and_then(|&at| node.literals.get(at))
}

fn walk(node: &Node, segments: &[&str], out: &mut Candidates) {
    // `**` takes whatever is left (whole segments), nothing included.
    if !node.rest.is_empty() && segments.iter().all(|s| !s.is_empty()) {
        out.extend(node.rest.iter().copied());
    }
    let Some((first, rest)) = segments.split_first() else {
        out.extend(node.ends.iter().copied());
        return;
    };
    if first.is_empty() {
        return;
    }
    if let Some(capture) = &node.capture {
        walk(capture, rest, out);
    }
    if node.literals.is_empty() {
        return;
    }
    // A few literals (the common node) are compared in turn: cheaper than
    // lowering and hashing the segment. Each lowercase form is listed once.
    let entries = if node.by_key.is_empty() {
        node.literals
            .iter()
            .find(|(key, _)| eq_lowercase(first.as_bytes(), key.as_bytes()))
    } else {
        lookup(node, first)
    };
    for (literal, child) in entries.into_iter().flat_map(|(_, e)| e) {
        if literal.matches_folded(first) {
            walk(child, rest, out);
        }
    }
}

mod candidates;
#[cfg(test)]
mod tests;
