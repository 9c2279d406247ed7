//! A path capture's value: held inline when it is short (a GUID is 36
//! bytes), so a match allocates nothing for it.

use std::fmt;
use std::ops::Deref;

/// The longest value held inline.
const INLINE: usize = 46;

/// The text of one capture.
#[derive(Clone)]
pub struct Capture(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl Capture {
    /// The capture of `value`.
    pub fn new(value: &str) -> Capture {
        let mut bytes = [0; INLINE];
        match (bytes.get_mut(..value.len()), u8::try_from(value.len())) {
            (Some(room), Ok(len)) => {
                room.copy_from_slice(value.as_bytes());
                Capture(Repr::Inline { len, bytes })
            }
            _ => Capture(Repr::Heap(value.into())),
        }
    }

    /// The text's bytes (without the UTF-8 check of [`Capture::as_str`]).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(s) => s.as_bytes(),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Copied from a `&str` whole: always UTF-8.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Heap(s) => s,
        }
    }
}

impl Deref for Capture {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Capture {
    fn from(value: &str) -> Capture {
        Capture::new(value)
    }
}

impl PartialEq for Capture {
    fn eq(&self, other: &Capture) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Capture {}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_inline_and_long_ones_on_the_heap_read_the_same() {
        let guid = "0a1b2c3d-0000-4000-8000-00000000de01";
        let long = "x".repeat(INLINE + 1);
        for v in ["", "é", guid, &"y".repeat(INLINE), &long] {
            let c = Capture::new(v);
            assert_eq!(c.as_str(), v);
            assert_eq!(c.as_bytes(), v.as_bytes());
            assert_eq!(&*c.clone(), v);
        }
        assert!(matches!(Capture::new(guid).0, Repr::Inline { .. }));
        assert!(matches!(Capture::new(&long).0, Repr::Heap(_)));
    }
}
