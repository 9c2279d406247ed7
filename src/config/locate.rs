//! Maps key paths to places in the TOML source.
//!
//! serde forgets where values came from, so the validated config cannot say
//! "line 12". We parse the text a second time into toml's span-keeping
//! `DeTable` and walk it by key path to find the line and column of a key.

use std::fmt::Write as _;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A key path such as `listeners[0].tls`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// The path extended by a key.
    pub fn key(&self, k: &str) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        KeyPath(v)
    }

    /// The path extended by an index.
    pub fn index(&self, i: usize) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        KeyPath(v)
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Seg::Index(i) => {
                    let _ = write!(s, "[{i}]");
                }
            }
        }
        f.write_str(&s)
    }
}

/// The parsed source, for locating keys.
pub struct Locator<'a> {
    text: &'a str,
    doc: Option<Spanned<DeTable<'a>>>,
}

impl<'a> Locator<'a> {
    /// Parses `text`; a text that does not parse locates nothing.
    pub fn new(text: &'a str) -> Self {
        Locator {
            text,
            doc: DeTable::parse(text).ok(),
        }
    }

    /// 1-based line and column of the key at `path`, or of its nearest
    /// existing ancestor; (0, 0) when nothing of it is in the file.
    pub fn position(&self, path: &KeyPath) -> (usize, usize) {
        match self.span_of(path) {
            Some(span) => self.line_col(span.start),
            None => (0, 0),
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// The key path of the innermost key whose value contains `offset`.
    pub fn path_at(&self, offset: usize) -> KeyPath {
        let mut path = KeyPath::default();
        if let Some(doc) = &self.doc {
            if !walk_at(doc.get_ref(), offset, &mut path) {
                path.0.clear();
            }
        }
        path
    }

    fn span_of(&self, path: &KeyPath) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut best: Option<Range<usize>> = None;
        let mut table: Option<&DeTable<'_>> = Some(doc.get_ref());
        let mut value: Option<&Spanned<DeValue<'_>>> = None;
        for seg in &path.0 {
            match seg {
                Seg::Key(k) => {
                    let t = match (table, value.map(|v| v.get_ref())) {
                        (Some(t), None) => t,
                        (_, Some(DeValue::Table(t))) => t,
                        _ => break,
                    };
                    let Some((key, v)) = t.iter().find(|(key, _)| key.get_ref().as_ref() == k)
                    else {
                        break;
                    };
                    best = Some(key.span());
                    table = None;
                    value = Some(v);
                }
                Seg::Index(i) => {
                    let Some(DeValue::Array(items)) = value.map(|v| v.get_ref()) else {
                        break;
                    };
                    let Some(item) = items.get(*i) else {
                        break;
                    };
                    best = Some(item.span());
                    value = Some(item);
                }
            }
        }
        best
    }
}

/// Depth-first search for the innermost entry containing `offset`. A
/// `[table]`'s own span covers only its header, so every subtree is searched.
fn walk_at(table: &DeTable<'_>, offset: usize, path: &mut KeyPath) -> bool {
    for (key, value) in table.iter() {
        path.0.push(Seg::Key(key.get_ref().to_string()));
        if walk_value(value.get_ref(), offset, path)
            || value.span().contains(&offset)
            || key.span().contains(&offset)
        {
            return true;
        }
        path.0.pop();
    }
    false
}

fn walk_value(value: &DeValue<'_>, offset: usize, path: &mut KeyPath) -> bool {
    match value {
        DeValue::Table(t) => walk_at(t, offset, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.0.push(Seg::Index(i));
                if walk_value(item.get_ref(), offset, path) || item.span().contains(&offset) {
                    return true;
                }
                path.0.pop();
            }
            false
        }
        _ => false,
    }
}
