//! Finding where a chunked body ends while it passes through unchanged.
//!
//! The pass-through path forwards an upstream's chunked response byte for
//! byte; it only has to know where the body ends, so that the upstream
//! connection can carry the next request and the client sees exactly one
//! response. The scanner is strict (RFC 9112 §7.1): CRLF line ends only, a
//! hexadecimal size of at most 15 digits, bounded extensions and trailers.
//! Anything else is an error and both connections are closed: a response
//! whose end is in doubt is never followed by another on the same
//! connection.

/// The longest chunk extension, or trailer section, accepted.
const MAX_LINE_EXTRA: usize = 16 * 1024;

/// A malformed chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct ChunkedError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the size's hex digits.
    Size,
    /// After the size: optional whitespace before `;` or CR.
    SizeWs,
    /// In a chunk extension, until CR.
    Ext,
    /// Expecting the LF after the size line.
    SizeLf,
    /// In chunk data.
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final CRLF).
    TrailerStart,
    /// In a trailer line, until CR.
    Trailer,
    /// Expecting the LF after a trailer line.
    TrailerLf,
    /// Expecting the LF of the final CRLF.
    EndLf,
    /// The body has ended.
    Done,
}

/// The scanner's state across reads.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
    /// Size of the current chunk; while in data, what is left of it.
    size: u64,
    digits: u8,
    /// Extension and trailer bytes seen, against [`MAX_LINE_EXTRA`].
    extra: usize,
    /// Chunk data bytes passed so far.
    seen: u64,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size,
            size: 0,
            digits: 0,
            extra: 0,
            seen: 0,
        }
    }
}

impl Chunked {
    /// Scans the next bytes of the body. `Some(n)`: the body ends after the
    /// first `n` bytes of `input` (what follows is not part of it);
    /// `None`: all of `input` belongs to the body and more is needed.
    pub fn scan(&mut self, input: &[u8]) -> Result<Option<usize>, ChunkedError> {
        self.run(input, |_| {})
    }

    /// Like [`Chunked::scan`], and appends the chunk data of `input` to
    /// `data`: a request body is decoded and sent on in chunks of the
    /// proxy's own (extensions and trailers dropped), so that the upstream
    /// never has to agree with this parser on anything unusual.
    pub fn decode(
        &mut self,
        input: &[u8],
        data: &mut Vec<u8>,
    ) -> Result<Option<usize>, ChunkedError> {
        self.run(input, |d| data.extend_from_slice(d))
    }

    /// Chunk data bytes passed so far.
    pub fn data_seen(&self) -> u64 {
        self.seen
    }

    fn run(
        &mut self,
        input: &[u8],
        mut sink: impl FnMut(&[u8]),
    ) -> Result<Option<usize>, ChunkedError> {
        if self.state == State::Done {
            return Ok(Some(0));
        }
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Data {
                let take = usize::try_from(self.size)
                    .unwrap_or(usize::MAX)
                    .min(input.len() - i);
                sink(&input[i..i + take]);
                self.seen += take as u64;
                i += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (State::Size, _) if b.is_ascii_hexdigit() => {
                    if self.digits == 15 {
                        return Err(ChunkedError);
                    }
                    self.digits += 1;
                    self.size = self.size * 16 + u64::from(hex(b));
                    State::Size
                }
                (State::Size | State::SizeWs, b' ' | b'\t') if self.digits > 0 => State::SizeWs,
                (State::Size | State::SizeWs, b';') if self.digits > 0 => State::Ext,
                (State::Size | State::SizeWs, b'\r') if self.digits > 0 => State::SizeLf,
                (State::Ext, b'\r') => State::SizeLf,
                (State::Ext, b'\n') => return Err(ChunkedError),
                (State::Ext, _) => {
                    self.extra += 1;
                    if self.extra > MAX_LINE_EXTRA {
                        return Err(ChunkedError);
                    }
                    State::Ext
                }
                (State::SizeLf, b'\n') => {
                    self.digits = 0;
                    if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    }
                }
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataLf, b'\n') => State::Size,
                (State::TrailerStart, b'\r') => State::EndLf,
                (State::TrailerStart | State::Trailer, b'\n') => return Err(ChunkedError),
                (State::TrailerStart | State::Trailer, _) => {
                    self.extra += 1;
                    if self.extra > MAX_LINE_EXTRA {
                        return Err(ChunkedError);
                    }
                    if b == b'\r' {
                        State::TrailerLf
                    } else {
                        State::Trailer
                    }
                }
                (State::TrailerLf, b'\n') => State::TrailerStart,
                (State::EndLf, b'\n') => {
                    self.state = State::Done;
                    return Ok(Some(i));
                }
                _ => return Err(ChunkedError),
            };
        }
        Ok(None)
    }
}

fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(input: &[u8]) -> Result<Option<usize>, ChunkedError> {
        Chunked::default().scan(input)
    }

    #[test]
    fn finds_the_end_of_well_formed_bodies() {
        assert_eq!(whole(b"0\r\n\r\n"), Ok(Some(5)));
        assert_eq!(whole(b"5\r\nhello\r\n0\r\n\r\nGET /"), Ok(Some(15)));
        assert_eq!(
            whole(b"A;name=\"v\"\r\n0123456789\r\n0\r\n\r\n"),
            Ok(Some(29))
        );
        assert_eq!(whole(b"1 ;x\r\na\r\n0\r\nExpires: 0\r\n\r\n"), Ok(Some(26)));
        assert_eq!(whole(b"5\r\nhel"), Ok(None));
    }

    #[test]
    fn the_end_is_found_however_the_input_is_split() {
        let body = b"4\r\nWiki\r\n5;a=b\r\npedia\r\n0\r\nX-T: 1\r\n\r\n";
        for chunk in 1..body.len() {
            let mut c = Chunked::default();
            let mut end = None;
            let mut pos = 0;
            for piece in body.chunks(chunk) {
                if let Some(n) = c.scan(piece).unwrap() {
                    end = Some(pos + n);
                    break;
                }
                pos += piece.len();
            }
            assert_eq!(end, Some(body.len()), "split every {chunk} bytes");
        }
    }

    #[test]
    fn decoding_keeps_only_the_data_however_the_input_is_split() {
        let body = b"4\r\nWiki\r\n5;a=b\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for chunk in 1..body.len() {
            let mut c = Chunked::default();
            let mut data = Vec::new();
            let mut end = None;
            let mut pos = 0;
            for piece in body.chunks(chunk) {
                if let Some(n) = c.decode(piece, &mut data).unwrap() {
                    end = Some(pos + n);
                    break;
                }
                pos += piece.len();
            }
            assert_eq!(data, b"Wikipedia", "split every {chunk} bytes");
            assert_eq!(end, Some(body.len() - 4));
        }
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for bad in [
            &b"\r\n"[..],
            b"x\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloX\r\n",
            b"5\r\nhello\r\r",
            b"0\r\n\n",
            b"0\r\nX-T: 1\n",
            b"-5\r\n",
            b"1000000000000000\r\n",
            b";ext\r\n",
        ] {
            assert_eq!(
                whole(bad),
                Err(ChunkedError),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long_ext = [b"1;".to_vec(), vec![b'a'; MAX_LINE_EXTRA + 1]].concat();
        assert_eq!(whole(&long_ext), Err(ChunkedError));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// A well-formed chunked body: chunks (with or without an extension),
    /// the last chunk, trailers.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let chunk = (prop::collection::vec(any::<u8>(), 1..40), any::<bool>());
        let trailer = prop::sample::select(vec!["X-T: 1\r\n", "Expires: 0\r\n"]);
        (
            prop::collection::vec(chunk, 0..6),
            prop::collection::vec(trailer, 0..3),
        )
            .prop_map(|(chunks, trailers)| {
                let mut b = Vec::new();
                for (data, ext) in chunks {
                    b.extend_from_slice(format!("{:x}", data.len()).as_bytes());
                    if ext {
                        b.extend_from_slice(b";name=value");
                    }
                    b.extend_from_slice(b"\r\n");
                    b.extend_from_slice(&data);
                    b.extend_from_slice(b"\r\n");
                }
                b.extend_from_slice(b"0\r\n");
                for t in trailers {
                    b.extend_from_slice(t.as_bytes());
                }
                b.extend_from_slice(b"\r\n");
                b
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// The end is found exactly, however the bytes arrive, and what
        /// follows is never taken for the body.
        #[test]
        fn the_end_is_exact(body in body(), cut in 1usize..64, next in "[ -~]{0,20}") {
            let mut input = body.clone();
            input.extend_from_slice(next.as_bytes());
            let mut c = Chunked::default();
            let mut pos = 0;
            let mut end = None;
            for piece in input.chunks(cut) {
                if let Some(n) = c.scan(piece).unwrap() {
                    end = Some(pos + n);
                    break;
                }
                pos += piece.len();
            }
            prop_assert_eq!(end, Some(body.len()));
        }

        /// Any bytes: an answer, never a panic, and never an end past the input.
        #[test]
        fn any_bytes_are_judged(input in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(Some(n)) = Chunked::default().scan(&input) {
                prop_assert!(n <= input.len());
            }
        }
    }
}
