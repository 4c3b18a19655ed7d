//! The `Transfer-Encoding: chunked` body framing (RFC 9112 section 7.1), decoded as the bytes
//! come: data is handed out as slices of the received buffers, never copied. Chunk extensions
//! are skipped and trailer fields read past, as Go's and hyper's readers do.

use bytes::{Buf, Bytes};

/// The longest chunk-size line (digits plus extensions) and the most trailer bytes accepted.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the chunk-size line: the size so far, its digit count, and whether the digits have
    /// ended (an extension or whitespace follows).
    Size {
        size: u64,
        digits: u8,
        ext: bool,
    },
    /// The size line's CR was read; its LF must follow.
    SizeLf {
        size: u64,
    },
    /// This many data bytes of the chunk are still to come.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataCr,
    DataLf,
    /// In the trailer section: whether the current line is still empty so far.
    Trailer {
        empty: bool,
    },
    TrailerLf {
        empty: bool,
    },
    Done,
}

/// A chunked body's decoder.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
    /// Bytes of the current size line, or of all trailers.
    overhead: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size {
                size: 0,
                digits: 0,
                ext: false,
            },
            overhead: 0,
        }
    }
}

impl Chunked {
    /// The last chunk and the trailers have been read: the body is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes from the front of `input` until it has a piece of data to hand out (`Some`), or
    /// `input` is used up or the body is complete (`None`). What follows the body is left in
    /// `input`.
    pub fn next(&mut self, input: &mut Bytes) -> Result<Option<Bytes>, &'static str> {
        while !input.is_empty() {
            if let State::Data(left) = self.state {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                self.state = if n as u64 == left {
                    State::DataCr
                } else {
                    State::Data(left - n as u64)
                };
                return Ok(Some(input.split_to(n)));
            }
            if self.state == State::Done {
                return Ok(None);
            }
            // Framing bytes up to the next data or the end, then one advance over them.
            let mut used = 0;
            for &byte in input.iter() {
                used += 1;
                self.step(byte)?;
                if matches!(self.state, State::Data(_) | State::Done) {
                    break;
                }
            }
            input.advance(used);
        }
        Ok(None)
    }

    /// One byte of framing (anything but data).
    fn step(&mut self, byte: u8) -> Result<(), &'static str> {
        self.state = match self.state {
            State::Size { size, digits, ext } => {
                self.overhead += 1;
                if self.overhead > MAX_LINE {
                    return Err("a chunk-size line is too long");
                }
                match byte {
                    b'\r' if digits > 0 => State::SizeLf { size },
                    _ if ext => State::Size { size, digits, ext },
                    b';' | b' ' | b'\t' if digits > 0 => State::Size {
                        size,
                        digits,
                        ext: true,
                    },
                    _ => {
                        let digit = (byte as char).to_digit(16).ok_or("a chunk size is not hexadecimal")?;
                        if digits == 15 {
                            return Err("a chunk size is too large");
                        }
                        State::Size {
                            size: size << 4 | u64::from(digit),
                            digits: digits + 1,
                            ext: false,
                        }
                    }
                }
            }
            State::SizeLf { size } => {
                if byte != b'\n' {
                    return Err("a chunk-size line does not end in CRLF");
                }
                self.overhead = 0;
                if size == 0 {
                    State::Trailer { empty: true }
                } else {
                    State::Data(size)
                }
            }
            State::DataCr if byte == b'\r' => State::DataLf,
            State::DataLf if byte == b'\n' => State::Size {
                size: 0,
                digits: 0,
                ext: false,
            },
            State::DataCr | State::DataLf => return Err("a chunk's data is not followed by CRLF"),
            State::Trailer { empty } => {
                self.overhead += 1;
                if self.overhead > MAX_TRAILERS {
                    return Err("the trailers are too long");
                }
                if byte == b'\r' {
                    State::TrailerLf { empty }
                } else {
                    State::Trailer { empty: false }
                }
            }
            State::TrailerLf { empty } => match (byte, empty) {
                (b'\n', true) => State::Done,
                (b'\n', false) => State::Trailer { empty: true },
                _ => return Err("a trailer line does not end in CRLF"),
            },
            State::Data(_) | State::Done => unreachable!("data and the end are handled by next"),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed in pieces of the given sizes (cycled); returns the data and whether
    /// the body completed, or the first error.
    fn decode(wire: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, bool, Vec<u8>), &'static str> {
        let mut d = Chunked::default();
        let mut data = Vec::new();
        let mut rest = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < wire.len() {
            let n = cuts[i % cuts.len()].max(1).min(wire.len() - at);
            i += 1;
            let mut input = Bytes::copy_from_slice(&wire[at..at + n]);
            at += n;
            while let Some(piece) = d.next(&mut input)? {
                assert!(!piece.is_empty(), "an empty piece was handed out");
                data.extend_from_slice(&piece);
            }
            if d.is_done() {
                rest.extend_from_slice(&input);
            } else {
                assert!(input.is_empty(), "input left over before the end");
            }
        }
        Ok((data, d.is_done(), rest))
    }

    /// Go's chunked writer: one chunk per write, `%x\r\n`, data, `\r\n`; `0\r\n\r\n` at close.
    fn go_chunked(writes: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for w in writes {
            out.extend_from_slice(format!("{:x}\r\n", w.len()).as_bytes());
            out.extend_from_slice(w);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    #[test]
    fn every_split_of_a_body_decodes_to_its_data() {
        let writes: Vec<Vec<u8>> = (0..40)
            .map(|i| (0..(i * 37 % 300 + 1)).map(|j| b'a' + ((i + j) % 26) as u8).collect())
            .collect();
        let refs: Vec<&[u8]> = writes.iter().map(|w| w.as_slice()).collect();
        let wire = go_chunked(&refs);
        let want: Vec<u8> = writes.concat();
        for cuts in [&[1][..], &[2], &[3, 1, 7], &[4096], &[5, 300, 2]] {
            let (data, done, rest) = decode(&wire, cuts).unwrap();
            assert_eq!(data, want, "cuts {cuts:?}");
            assert!(done, "cuts {cuts:?}");
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn extensions_trailers_and_what_follows_the_body() {
        let wire = b"5;name=value\r\nhello\r\nA \r\n0123456789\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\nNEXT";
        for cuts in [&[1][..], &[3], &[100]] {
            let (data, done, rest) = decode(wire, cuts).unwrap();
            assert_eq!(data, b"hello0123456789");
            assert!(done);
            assert_eq!(rest, b"NEXT");
        }
    }

    #[test]
    fn a_body_cut_short_is_not_done() {
        let wire = go_chunked(&[b"line one\n", b"line two\n"]);
        for end in 0..wire.len() {
            let (data, done, _) = decode(&wire[..end], &[1]).unwrap();
            assert!(!done, "done after {end} of {} bytes", wire.len());
            assert!(b"line one\nline two\n".starts_with(&data));
        }
    }

    #[test]
    fn malformed_framing_is_an_error() {
        for (wire, want) in [
            (&b"zz\r\n"[..], "a chunk size is not hexadecimal"),
            (b"\r\n", "a chunk size is not hexadecimal"),
            (b"3\r\nabcX", "a chunk's data is not followed by CRLF"),
            (b"3\rX", "a chunk-size line does not end in CRLF"),
            (b"1000000000000000\r\n", "a chunk size is too large"),
            (b"0\r\nA: b\rX", "a trailer line does not end in CRLF"),
        ] {
            assert_eq!(
                decode(wire, &[1]).unwrap_err(),
                want,
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let long = [b"1;".as_slice(), &[b'x'; MAX_LINE]].concat();
        assert_eq!(decode(&long, &[64]).unwrap_err(), "a chunk-size line is too long");
    }
}
