//! A bound on how deeply a kubeconfig nests, checked before serde sees the file.
//!
//! libyaml's scanner costs time in proportion to the open flow collections for every token it
//! reads, so `[[[[...]]]]` is quadratic: 16k levels (32 KB) took 3.8 s, and yaml_serde loads a
//! whole document before its own depth limit (128) applies. This pass pulls libyaml's events one
//! at a time and stops at the first that opens level [`MAX_DEPTH`] + 1, so the scanner never
//! holds more than that many levels plus its 1024-character look-ahead: linear time.
//!
//! The parser is `libyaml-rs`, the one yaml_serde is built on (no new code in the binary);
//! the only `unsafe` of the crate's configuration code is here, behind [`check`].

use std::mem::MaybeUninit;

use libyaml_rs as sys;

/// Deeper than any kubeconfig: the deepest standard field is
/// `users[].user.exec.env[].value` (6 levels); extensions are free-form but small.
pub const MAX_DEPTH: usize = 64;

/// Why the file was refused, with the 1-based line and column of the event that went too deep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooDeep {
    pub line: u64,
    pub column: u64,
}

impl std::fmt::Display for TooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "nests deeper than {MAX_DEPTH} levels at line {} column {}",
            self.line, self.column
        )
    }
}

impl std::error::Error for TooDeep {}

/// Checks the first YAML document of `text` (the only one kubectl reads). A syntax error is
/// not reported here: the pass stops, and the serde pass reports it with its path.
pub fn check(text: &str) -> Result<(), TooDeep> {
    let mut parser = Parser::new(text.as_bytes());
    let mut depth = 0usize;
    loop {
        let Some((kind, line, column)) = parser.next() else {
            return Ok(());
        };
        match kind {
            sys::YAML_SEQUENCE_START_EVENT | sys::YAML_MAPPING_START_EVENT => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(TooDeep { line, column });
                }
            }
            sys::YAML_SEQUENCE_END_EVENT | sys::YAML_MAPPING_END_EVENT => depth = depth.saturating_sub(1),
            sys::YAML_DOCUMENT_END_EVENT | sys::YAML_STREAM_END_EVENT => return Ok(()),
            _ => {}
        }
    }
}

/// The libyaml state lives in a `Box`: it must not move while it points into itself.
struct Parser<'a> {
    raw: Box<MaybeUninit<sys::yaml_parser_t>>,
    _input: &'a [u8],
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8]) -> Parser<'a> {
        let mut raw: Box<MaybeUninit<sys::yaml_parser_t>> = Box::new(MaybeUninit::uninit());
        // SAFETY: libyaml initialises the fresh allocation; the input outlives the parser
        // (lifetime 'a) and is only read.
        unsafe {
            let p = raw.as_mut_ptr();
            if sys::yaml_parser_initialize(p).fail {
                panic!("libyaml could not initialise a parser");
            }
            sys::yaml_parser_set_encoding(p, sys::YAML_UTF8_ENCODING);
            sys::yaml_parser_set_input_string(p, input.as_ptr(), input.len() as u64);
        }
        Parser { raw, _input: input }
    }

    /// The next event's kind and 1-based start position; `None` on a syntax error.
    fn next(&mut self) -> Option<(sys::yaml_event_type_t, u64, u64)> {
        let mut event = MaybeUninit::<sys::yaml_event_t>::uninit();
        // SAFETY: the parser is initialised and not shared; libyaml fills `event` only when it
        // succeeds, and a filled event is read and then deleted exactly once.
        unsafe {
            let p = self.raw.as_mut_ptr();
            if (&*p).error != sys::YAML_NO_ERROR || sys::yaml_parser_parse(p, event.as_mut_ptr()).fail {
                return None;
            }
            let e = &*event.as_ptr();
            let out = (e.type_, e.start_mark.line + 1, e.start_mark.column + 1);
            sys::yaml_event_delete(event.as_mut_ptr());
            Some(out)
        }
    }
}

impl Drop for Parser<'_> {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, deleted once here.
        unsafe { sys::yaml_parser_delete(self.raw.as_mut_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_depths_pass_and_the_limit_is_exact() {
        let nested = |n: usize| format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
        // The top-level mapping is one level.
        assert_eq!(check(&nested(MAX_DEPTH - 1)), Ok(()));
        assert_eq!(
            check(&nested(MAX_DEPTH)),
            Err(TooDeep {
                line: 1,
                column: 3 + MAX_DEPTH as u64
            })
        );
        assert_eq!(check("clusters:\n- name: a\n  cluster: {server: x}\n"), Ok(()));
        // Only the first document counts, as only it is read.
        assert_eq!(check(&format!("a: 1\n---\n{}", nested(1000))), Ok(()));
        // Block nesting counts too.
        assert!(check(&format!("a:\n{}x\n", "- ".repeat(MAX_DEPTH))).is_err());
        // A syntax error is left to the serde pass.
        assert_eq!(check("a: [\n"), Ok(()));
    }
}
