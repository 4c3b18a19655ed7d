//! libyaml's event parser (the `libyaml-rs` crate that yaml_serde is built on, so no new code
//! in the binary) behind a safe pull API: one [`YamlEvent`] at a time with the line and column it
//! starts at. The only `unsafe` of the front end lives here; everything above it is safe Rust.
//! Pulling event by event lets the tree builder stop early (nesting or alias budget exceeded)
//! before libyaml has scanned the rest of a hostile file.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use libyaml_rs as sys;

/// Where an event starts: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    pub line: u32,
    pub col: u32,
}

impl Mark {
    fn of(m: &sys::yaml_mark_t) -> Mark {
        Mark {
            line: u32::try_from(m.line + 1).unwrap_or(u32::MAX),
            col: u32::try_from(m.column + 1).unwrap_or(u32::MAX),
        }
    }
}

/// One parser event (YAML 1.1 event stream, as libyaml reports it).
#[derive(Debug, Clone, PartialEq)]
pub enum YamlEvent {
    StreamStart,
    StreamEnd,
    DocumentStart,
    DocumentEnd,
    Alias(String),
    Scalar {
        anchor: Option<String>,
        tag: Option<String>,
        value: String,
        /// Written without quotes or block indicators (only plain scalars are resolved to
        /// null, bool, int or float; only a plain `<<` is a merge key).
        plain: bool,
    },
    SequenceStart {
        anchor: Option<String>,
        tag: Option<String>,
    },
    SequenceEnd,
    MappingStart {
        anchor: Option<String>,
        tag: Option<String>,
    },
    MappingEnd,
}

/// libyaml's own error: what it found and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub mark: Mark,
    pub problem: String,
    pub context: Option<String>,
}

/// A pull parser over one input. The libyaml state lives in a `Box` (it must not move while
/// it points into itself and at `input`) and is freed on drop.
pub struct Parser<'a> {
    raw: Box<MaybeUninit<sys::yaml_parser_t>>,
    _input: &'a [u8],
    done: bool,
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a str) -> Parser<'a> {
        let mut raw: Box<MaybeUninit<sys::yaml_parser_t>> = Box::new(MaybeUninit::uninit());
        let bytes = input.as_bytes();
        // SAFETY: `raw` is a fresh allocation that libyaml initialises; the input slice outlives
        // the parser (lifetime 'a) and is never written to.
        unsafe {
            let p = raw.as_mut_ptr();
            if sys::yaml_parser_initialize(p).fail {
                // Only an allocation failure; Rust's allocator aborts before that happens.
                panic!("libyaml could not initialise a parser");
            }
            sys::yaml_parser_set_encoding(p, sys::YAML_UTF8_ENCODING);
            sys::yaml_parser_set_input_string(p, bytes.as_ptr(), bytes.len() as u64);
        }
        Parser {
            raw,
            _input: bytes,
            done: false,
        }
    }

    /// The next event and where it starts.
    pub fn next_event(&mut self) -> Result<(YamlEvent, Mark), SyntaxError> {
        let mut ev = MaybeUninit::<sys::yaml_event_t>::uninit();
        // SAFETY: the parser was initialised in `new` and is not shared; an event filled by a
        // successful `yaml_parser_parse` is read once and then deleted exactly once.
        unsafe {
            let p = self.raw.as_mut_ptr();
            if self.done || (&*p).error != sys::YAML_NO_ERROR || sys::yaml_parser_parse(p, ev.as_mut_ptr()).fail {
                return Err(self.error());
            }
            let e = &*ev.as_ptr();
            let mark = Mark::of(&e.start_mark);
            let event = convert(e);
            sys::yaml_event_delete(ev.as_mut_ptr());
            if event == YamlEvent::StreamEnd {
                self.done = true;
            }
            Ok((event, mark))
        }
    }

    fn error(&self) -> SyntaxError {
        // SAFETY: reading the error fields of an initialised parser; the strings are static C
        // strings owned by libyaml.
        unsafe {
            let p = &*self.raw.as_ptr();
            let text = |ptr: *const std::ffi::c_char| -> Option<String> {
                (!ptr.is_null()).then(|| std::ffi::CStr::from_ptr(ptr).to_string_lossy().into_owned())
            };
            SyntaxError {
                mark: Mark::of(&p.problem_mark),
                problem: text(p.problem.cast()).unwrap_or_else(|| "the YAML stream ended".into()),
                context: text(p.context.cast()),
            }
        }
    }
}

impl Drop for Parser<'_> {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, deleted once here.
        unsafe { sys::yaml_parser_delete(self.raw.as_mut_ptr()) }
    }
}

/// SAFETY: `e` is a valid event from `yaml_parser_parse`; the union field read matches its type.
unsafe fn convert(e: &sys::yaml_event_t) -> YamlEvent {
    unsafe fn owned(ptr: *const u8) -> Option<String> {
        (!ptr.is_null()).then(|| {
            unsafe { std::ffi::CStr::from_ptr(ptr.cast()) }
                .to_string_lossy()
                .into_owned()
        })
    }
    unsafe {
        match e.type_ {
            sys::YAML_STREAM_START_EVENT => YamlEvent::StreamStart,
            sys::YAML_DOCUMENT_START_EVENT => YamlEvent::DocumentStart,
            sys::YAML_DOCUMENT_END_EVENT => YamlEvent::DocumentEnd,
            sys::YAML_ALIAS_EVENT => YamlEvent::Alias(owned(e.data.alias.anchor).unwrap_or_default()),
            sys::YAML_SCALAR_EVENT => {
                let s = &e.data.scalar;
                let bytes = std::slice::from_raw_parts(s.value, s.length as usize);
                YamlEvent::Scalar {
                    anchor: owned(s.anchor),
                    tag: owned(s.tag),
                    value: match String::from_utf8_lossy(bytes) {
                        Cow::Borrowed(b) => b.to_owned(),
                        Cow::Owned(o) => o,
                    },
                    plain: s.style == sys::YAML_PLAIN_SCALAR_STYLE,
                }
            }
            sys::YAML_SEQUENCE_START_EVENT => YamlEvent::SequenceStart {
                anchor: owned(e.data.sequence_start.anchor),
                tag: owned(e.data.sequence_start.tag),
            },
            sys::YAML_SEQUENCE_END_EVENT => YamlEvent::SequenceEnd,
            sys::YAML_MAPPING_START_EVENT => YamlEvent::MappingStart {
                anchor: owned(e.data.mapping_start.anchor),
                tag: owned(e.data.mapping_start.tag),
            },
            sys::YAML_MAPPING_END_EVENT => YamlEvent::MappingEnd,
            _ => YamlEvent::StreamEnd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Result<Vec<(YamlEvent, Mark)>, SyntaxError> {
        let mut p = Parser::new(text);
        let mut out = Vec::new();
        loop {
            let (e, m) = p.next_event()?;
            let end = e == YamlEvent::StreamEnd;
            out.push((e, m));
            if end {
                return Ok(out);
            }
        }
    }

    #[test]
    fn events_carry_their_position_and_style() {
        let evs = all("a: 'x'\nb:\n  - &k y\n  - *k\n").unwrap();
        let scalars: Vec<(String, bool, u32, u32)> = evs
            .iter()
            .filter_map(|(e, m)| match e {
                YamlEvent::Scalar { value, plain, .. } => Some((value.clone(), *plain, m.line, m.col)),
                _ => None,
            })
            .collect();
        assert_eq!(
            scalars,
            [
                ("a".into(), true, 1, 1),
                ("x".into(), false, 1, 4),
                ("b".into(), true, 2, 1),
                ("y".into(), true, 3, 5)
            ]
        );
        assert!(
            evs.iter()
                .any(|(e, m)| *e == YamlEvent::Alias("k".into()) && m.line == 4)
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = all("a: [\n").unwrap_err();
        assert_eq!(
            (e.mark.line, e.problem.as_str()),
            (2, "did not find expected node content")
        );
        // After an error the parser keeps failing instead of reading past it.
        let mut p = Parser::new("a: [\n");
        while p.next_event().is_ok() {}
        assert!(p.next_event().is_err());
    }
}
