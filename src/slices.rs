//! Small in-place operations on slices.

/// Sorts `s` and moves one of each value to its front, in order; returns
/// how many distinct values there are (the rest of `s` is left over).
pub fn sort_dedup<T: Ord + Copy>(s: &mut [T]) -> usize {
    s.sort_unstable();
    let mut kept = 0;
    for i in 0..s.len() {
        if kept == 0 || s[i] != s[kept - 1] {
            s[kept] = s[i];
            kept += 1;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_a_vector_sorted_and_deduplicated() {
        for v in [
            vec![],
            vec![1],
            vec![2, 2, 2],
            vec![3, 1, 2, 1, 3],
            vec![5, 4, 3, 2, 1, 1],
        ] {
            let mut s = v.clone();
            let n = sort_dedup(&mut s);
            let mut want = v.clone();
            want.sort_unstable();
            want.dedup();
            assert_eq!(&s[..n], &want[..], "{v:?}");
        }
    }
}
