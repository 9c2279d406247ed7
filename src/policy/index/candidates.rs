//! The candidate rules of one path: a few inline, more on the heap.
//!
//! A path has one or two candidates in practice; a vector for them would
//! be an allocation and a free on every judged request.

/// Candidates held inline before they spill onto the heap.
const INLINE: usize = 5;

/// Rule indexes, in rule order once [`Candidates::sort_dedup`] ran.
#[derive(Debug, Clone)]
pub enum Candidates {
    /// Up to five indexes (rule sets are far below `u32::MAX`).
    Few(u8, [u32; INLINE]),
    /// More.
    Many(Vec<usize>),
}

impl Default for Candidates {
    fn default() -> Self {
        Candidates::Few(0, [0; INLINE])
    }
}

impl Candidates {
    /// Adds `rules`.
    pub fn extend(&mut self, rules: impl IntoIterator<Item = usize>) {
        for r in rules {
            self.push(r);
        }
    }

    /// The `i`-th index.
    pub fn get(&self, i: usize) -> Option<usize> {
        match self {
            Candidates::Few(n, at) => at[..usize::from(*n)].get(i).map(|&r| r as usize),
            Candidates::Many(v) => v.get(i).copied(),
        }
    }

    /// Adds `rule`.
    pub fn push(&mut self, rule: usize) {
        match self {
            Candidates::Few(n, at) => match (at.get_mut(usize::from(*n)), u32::try_from(rule)) {
                (Some(slot), Ok(r)) => {
                    *slot = r;
                    *n += 1;
                }
                _ => {
                    let mut all: Vec<usize> = self.iter().collect();
                    all.push(rule);
                    *self = Candidates::Many(all);
                }
            },
            Candidates::Many(v) => v.push(rule),
        }
    }

    /// Sorts into rule order and drops repeats.
    pub fn sort_dedup(&mut self) {
        match self {
            Candidates::Few(n, at) => {
                let kept = crate::slices::sort_dedup(&mut at[..usize::from(*n)]);
                // `kept` <= `n`, which fits a `u8`.
                *n = u8::try_from(kept).unwrap_or(*n);
            }
            Candidates::Many(v) => {
                v.sort_unstable();
                v.dedup();
            }
        }
    }

    /// How many.
    pub fn len(&self) -> usize {
        match self {
            Candidates::Few(n, _) => usize::from(*n),
            Candidates::Many(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The indexes, in order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let (few, many) = match self {
            Candidates::Few(n, at) => (&at[..usize::from(*n)], &[][..]),
            Candidates::Many(v) => (&[][..], &v[..]),
        };
        few.iter().map(|&r| r as usize).chain(many.iter().copied())
    }

    /// Whether `rule` is among them (sorted).
    pub fn contains(&self, rule: usize) -> bool {
        self.iter().any(|r| r == rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever is added, in whatever order: the same as a vector
        /// sorted and deduplicated, inline or spilled.
        #[test]
        fn like_a_sorted_deduplicated_vector(
            rules in proptest::collection::vec(0usize..12, 0..12),
        ) {
            let mut c = Candidates::default();
            for chunk in rules.chunks(3) {
                c.extend(chunk.iter().copied());
            }
            c.sort_dedup();
            let mut v = rules.clone();
            v.sort_unstable();
            v.dedup();
            prop_assert_eq!(c.iter().collect::<Vec<_>>(), v.clone());
            prop_assert_eq!(c.len(), v.len());
            for (i, r) in v.iter().enumerate() {
                prop_assert_eq!(c.get(i), Some(*r));
            }
            prop_assert_eq!(c.get(v.len()), None);
            for r in 0..12 {
                prop_assert_eq!(c.contains(r), v.contains(&r));
            }
        }
    }
}
