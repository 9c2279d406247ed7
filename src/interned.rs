//! Names from configurations, interned: a region or a tenant source is
//! copied into every judgement and decision record it concerns, and as a
//! shared `Arc` each copy would write a reference count that every core
//! writes too. The names are only ever those configurations hold (at most
//! a few per configuration), so each distinct name is kept once, for the
//! life of the process.

use std::collections::BTreeSet;
use std::sync::Mutex;

static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

/// The one copy of `name`.
pub fn intern(name: &str) -> &'static str {
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(kept) = names.get(name) {
        return kept;
    }
    let kept: &'static str = Box::leak(name.into());
    names.insert(kept);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_per_name() {
        let a = intern("germany");
        let b = intern(&String::from("germany"));
        assert!(std::ptr::eq(a, b));
        assert_eq!(intern("global"), "global");
        assert!(!std::ptr::eq(a, intern("global")));
    }
}
