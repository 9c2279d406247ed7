//! The worker thread's answer buffer: the bytes of a redirect, an
//! explanation or an error page are rendered into the buffer the thread's
//! previous answer was written from, still in the CPU's first-level cache,
//! instead of into the connection's own output buffer, last touched when
//! that connection was last served (with 64 connections taking turns on
//! one thread, 63 requests ago). nginx's answers come the same way from
//! memory its allocator just handed back.
//!
//! One buffer per thread: an answer is rendered and, nearly always,
//! written at once, so one connection holds it at a time. A connection
//! takes it only when it has no output buffer of its own
//! ([`lend`]) and gives it back after a complete write ([`give_back`]).

use std::cell::Cell;

/// The largest buffer kept for the next answer; a larger one (a long
/// error page) stays with its connection, which frees it when idle.
const KEEP_MAX: usize = 16 * 1024;

thread_local! {
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Puts the thread's answer buffer in place of `out` when the connection
/// has none (never allocated, or given back).
#[inline]
pub fn lend(out: &mut Vec<u8>) {
    if out.capacity() == 0 {
        *out = SPARE.take();
    }
}

/// Gives `out` to the thread for the next answer (leaving the connection
/// without one), unless it grew too large to keep.
#[inline]
pub fn give_back(out: &mut Vec<u8>) {
    if out.capacity() <= KEEP_MAX {
        // A buffer another connection gave back meanwhile (its answer
        // waited on a full socket) is dropped: one is kept.
        drop(SPARE.replace(std::mem::take(out)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_buffer_given_back_is_the_next_one_lent_and_a_large_one_is_not_kept() {
        // Whatever this thread's spare held before, it is empty now.
        lend(&mut Vec::new());
        let mut out = Vec::with_capacity(600);
        out.extend_from_slice(b"HTTP/1.1 302 Found\r\n");
        let at = out.as_ptr();
        give_back(&mut out);
        assert_eq!(out.capacity(), 0, "given back");

        // A connection with a buffer of its own keeps it.
        let mut own = Vec::with_capacity(64);
        let own_at = own.as_ptr();
        lend(&mut own);
        assert_eq!(own.as_ptr(), own_at);

        // One without takes the thread's, as it was left.
        let mut next = Vec::new();
        lend(&mut next);
        assert_eq!(next.as_ptr(), at);
        assert_eq!(&next[..], b"HTTP/1.1 302 Found\r\n", "callers clear it");
        let mut none = Vec::new();
        lend(&mut none);
        assert_eq!(none.capacity(), 0, "one buffer, lent once");

        // A buffer past KEEP_MAX stays with its connection until it is
        // dropped; the spare stays empty.
        let mut large = Vec::with_capacity(KEEP_MAX + 1);
        give_back(&mut large);
        assert_eq!(large.capacity(), KEEP_MAX + 1);
        lend(&mut none);
        assert_eq!(none.capacity(), 0);
    }
}
