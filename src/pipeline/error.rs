//! The front end's error: what went wrong with a pipeline file, pointing at the file, the line
//! and the key (`steps.build.image`). One type for parsing and compiling, since both report
//! against what the user wrote; and the [`Warning`] for what Woodpecker accepts with a lint
//! warning. Knows nothing of the runtime.

use std::fmt;

/// A pipeline file problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineError {
    /// The file as the user named it.
    pub file: String,
    /// 1-based; 0 when the problem is the whole file.
    pub line: usize,
    /// The dotted key path (`steps.build.environment.TOKEN`), empty for the document.
    pub key: String,
    pub kind: ErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A key Woodpecker knows that this front end does not implement.
    NotSupported,
    /// The value has the wrong YAML type.
    WrongType { expected: &'static str },
    /// A value that is the right type but not allowed.
    Invalid(String),
    /// `from_secret` names a secret nobody provided.
    MissingSecret(String),
    /// The file could not be read or is not YAML.
    Read(String),
}

impl PipelineError {
    pub fn new(file: &str, line: usize, key: &str, kind: ErrorKind) -> Self {
        PipelineError {
            file: file.to_owned(),
            line,
            key: key.to_owned(),
            kind,
        }
    }

    pub fn invalid(file: &str, line: usize, key: &str, msg: impl Into<String>) -> Self {
        PipelineError::new(file, line, key, ErrorKind::Invalid(msg.into()))
    }

    fn place(&self) -> String {
        if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}", self.file, self.line)
        }
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = self.place();
        let key = if self.key.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.key)
        };
        match &self.kind {
            ErrorKind::NotSupported => write!(f, "not supported: {} ({place})", self.key),
            ErrorKind::WrongType { expected } => write!(f, "{place}: {key}expected {expected}"),
            ErrorKind::Invalid(msg) => write!(f, "{place}: {key}{msg}"),
            ErrorKind::MissingSecret(name) => write!(
                f,
                "{place}: {key}secret `{name}` is not set (pass --secret {name}=VALUE or set ${name} in the environment)"
            ),
            ErrorKind::Read(msg) => write!(f, "{place}: {msg}"),
        }
    }
}

impl std::error::Error for PipelineError {}

/// A piece of the user's input short enough to quote in a message (a hostile file may put
/// 100 KB in one value).
pub fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

/// What Woodpecker accepts but its linter warns about (an unknown key, a value outside its
/// list, a deprecated key), or what has no effect on a local run. Printed once per place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Warning {
    pub file: String,
    /// 1-based; 0 for the whole file.
    pub line: usize,
    /// The dotted key (`steps.build.shm_size`), empty for the document.
    pub key: String,
    pub msg: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}", self.file, self.line)
        };
        if self.key.is_empty() {
            write!(f, "{place}: {}", self.msg)
        } else {
            write!(f, "{place}: {}: {}", self.key, self.msg)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_each_kind() {
        let e = PipelineError::new("a.yaml", 3, "steps.x.shm_size", ErrorKind::NotSupported);
        assert_eq!(e.to_string(), "not supported: steps.x.shm_size (a.yaml:3)");
        let e = PipelineError::new(
            "a.yaml",
            4,
            "steps.x.image",
            ErrorKind::WrongType { expected: "a string" },
        );
        assert_eq!(e.to_string(), "a.yaml:4: steps.x.image: expected a string");
        let e = PipelineError::new("a.yaml", 0, "", ErrorKind::Read("no such file".into()));
        assert_eq!(e.to_string(), "a.yaml: no such file");
    }
}
