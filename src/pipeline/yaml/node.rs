//! A YAML node with what an error needs: the file, the line its key (or list item) was written
//! on, and the dotted key shown to the user (`steps.build.image`); typed accessors that decode
//! by Go's yaml rules as Woodpecker's types do (any scalar is a fine string, `StringOrSlice`
//! items must be strings, null is "absent") and fail with the front end's [`PipelineError`]; and the
//! sink for warnings (what Woodpecker's linter only warns about).

use std::cell::RefCell;

use super::tree::{Kind, V, Yaml};
use crate::pipeline::error::{ErrorKind, PipelineError, Warning};

/// The file being read and the warnings found in it.
#[derive(Debug)]
pub struct Source<'a> {
    pub file: &'a str,
    pub warnings: RefCell<Vec<Warning>>,
}

impl<'a> Source<'a> {
    pub fn new(file: &'a str) -> Self {
        Source {
            file,
            warnings: RefCell::new(Vec::new()),
        }
    }
}

#[derive(Clone)]
pub struct Node<'a> {
    pub y: &'a Yaml,
    src: &'a Source<'a>,
    /// The dotted name shown to the user (list items that have a name show the name).
    key: String,
    line: usize,
}

impl<'a> Node<'a> {
    pub fn root(y: &'a Yaml, src: &'a Source<'a>) -> Self {
        Node {
            y,
            src,
            key: String::new(),
            line: y.line as usize,
        }
    }

    /// The dotted name shown in errors.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Where the key (or list item) was written.
    pub fn line(&self) -> usize {
        self.line
    }

    pub fn file(&self) -> &str {
        self.src.file
    }

    pub fn error(&self, kind: ErrorKind) -> PipelineError {
        PipelineError::new(self.src.file, self.line, &self.key, kind)
    }

    pub fn invalid(&self, msg: impl Into<String>) -> PipelineError {
        self.error(ErrorKind::Invalid(msg.into()))
    }

    /// Records a warning about this node.
    pub fn warn(&self, msg: impl Into<String>) {
        self.src.warnings.borrow_mut().push(Warning {
            file: self.src.file.to_owned(),
            line: self.line,
            key: self.key.clone(),
            msg: msg.into(),
        });
    }

    fn wrong(&self, expected: &'static str) -> PipelineError {
        self.error(ErrorKind::WrongType { expected })
    }

    fn join(&self, name: &str) -> String {
        if self.key.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.key)
        }
    }

    /// The child under a map key (its line is the key's).
    pub fn child(&self, key: &'a Yaml, name: &str, value: &'a Yaml) -> Node<'a> {
        Node {
            y: value,
            src: self.src,
            key: self.join(name),
            line: key.line as usize,
        }
    }

    /// The child at a list index, displayed as `name` when given, else `[i]`.
    pub fn item(&self, index: usize, value: &'a Yaml, name: Option<&str>) -> Node<'a> {
        let key = match name {
            Some(n) => self.join(n),
            None => format!("{}[{index}]", self.key),
        };
        Node {
            y: value,
            src: self.src,
            key,
            line: value.line as usize,
        }
    }

    pub fn is_null(&self) -> bool {
        self.y.is_null()
    }

    pub fn is_map(&self) -> bool {
        matches!(self.y.v, V::Map(_))
    }

    pub fn is_seq(&self) -> bool {
        matches!(self.y.v, V::Seq(_))
    }

    /// A map's entries in file order, keys as text; null is an empty map.
    pub fn entries(&self) -> Result<Vec<(String, Node<'a>)>, PipelineError> {
        match &self.y.v {
            V::Map(map) => map
                .iter()
                .map(|(k, v)| {
                    let name = k
                        .as_scalar()
                        .map(|s| s.text.clone())
                        .ok_or_else(|| self.invalid("map keys must be strings"))?;
                    let child = self.child(k, &name, v);
                    Ok((name, child))
                })
                .collect(),
            _ if self.is_null() => Ok(Vec::new()),
            _ => Err(self.wrong("a map")),
        }
    }

    /// The value under `key`, unless absent or null (Go leaves a field alone for null).
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        let V::Map(map) = &self.y.v else { return None };
        map.iter()
            .find(|(k, _)| k.as_scalar().is_some_and(|s| s.text == key))
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| self.child(k, key, v))
    }

    /// Warns about every key not in `known` (Woodpecker ignores them; its linter warns).
    pub fn warn_unknown(&self, known: &[&str], what: &str) -> Result<(), PipelineError> {
        for (k, node) in self.entries()? {
            if !known.contains(&k.as_str()) {
                node.warn(format!("`{k}` is not a key of {what}; ignored"));
            }
        }
        Ok(())
    }

    /// Any scalar as its text (Go decodes `1.10` into a string as `1.10`); null is empty.
    pub fn string(&self) -> Result<String, PipelineError> {
        match &self.y.v {
            V::Scalar(s) if s.kind == Kind::Null => Ok(String::new()),
            V::Scalar(s) => Ok(s.text.clone()),
            _ => Err(self.wrong("a string")),
        }
    }

    /// `true`/`false` (and YAML 1.1's yes/no/on/off, which Go accepts for a bool); null is false.
    pub fn boolean(&self) -> Result<bool, PipelineError> {
        let Some(s) = self.y.as_scalar() else {
            return Err(self.wrong("true or false"));
        };
        match (s.kind, s.text.as_str()) {
            (Kind::Bool(b), _) => Ok(b),
            (Kind::Null, _) => Ok(false),
            (_, "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON") => Ok(true),
            (_, "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF") => Ok(false),
            _ => Err(self.wrong("true or false")),
        }
    }

    /// A list's items; null is an empty list.
    pub fn items(&self) -> Result<Vec<Node<'a>>, PipelineError> {
        match &self.y.v {
            V::Seq(seq) => Ok(seq.iter().enumerate().map(|(i, v)| self.item(i, v, None)).collect()),
            _ if self.is_null() => Ok(Vec::new()),
            _ => Err(self.wrong("a list")),
        }
    }

    /// Woodpecker's `StringOrSlice`: a scalar, or a list whose items are strings (a number or a
    /// map in the list is an error, as in Go).
    pub fn strings(&self) -> Result<Vec<String>, PipelineError> {
        match &self.y.v {
            V::Scalar(s) if s.kind == Kind::Null => Ok(Vec::new()),
            V::Scalar(s) => Ok(vec![s.text.clone()]),
            V::Seq(_) => self.items()?.iter().map(Node::list_string).collect(),
            V::Map(_) => Err(self.wrong("a string or a list of strings")),
        }
    }

    fn list_string(&self) -> Result<String, PipelineError> {
        match &self.y.v {
            V::Scalar(s) if s.kind == Kind::Str => Ok(s.text.clone()),
            V::Scalar(s) if s.kind != Kind::Null => {
                Err(self.invalid(format!("expected a string, found a {} (quote it)", kind_name(s.kind))))
            }
            V::Map(_) => Err(self.invalid("expected a string, found a map (quote it if it contains `: `)")),
            _ => Err(self.wrong("a string")),
        }
    }

    /// A Go `[]string`: a list of scalars (numbers read as written).
    pub fn string_list(&self) -> Result<Vec<String>, PipelineError> {
        self.items()?.iter().map(Node::string).collect()
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Bool(_) => "boolean",
        Kind::Int(_) | Kind::Float(_) => "number",
        _ => "value",
    }
}
