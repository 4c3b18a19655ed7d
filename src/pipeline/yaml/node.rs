//! A YAML value with where it came from: the key path (to find its line and to name it in
//! errors) and typed accessors that fail with the front end's [`Error`]. Woodpecker decodes
//! scalars leniently (a number is a fine image tag), so string accessors accept any scalar.

use serde_yaml::Value;

use super::locate::{Seg, line_of};
use crate::pipeline::error::{Error, ErrorKind};

/// The file being read.
#[derive(Debug)]
pub struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

#[derive(Clone)]
pub struct Node<'a> {
    pub value: &'a Value,
    src: &'a Source<'a>,
    path: Vec<Seg>,
    /// The dotted name shown to the user (list items that have a name show the name).
    key: String,
}

impl<'a> Node<'a> {
    pub fn root(value: &'a Value, src: &'a Source<'a>) -> Self {
        Node {
            value,
            src,
            path: Vec::new(),
            key: String::new(),
        }
    }

    /// The dotted name shown in errors.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn line(&self) -> usize {
        line_of(self.src.text, &self.path)
    }

    pub fn file(&self) -> &str {
        self.src.file
    }

    pub fn error(&self, kind: ErrorKind) -> Error {
        Error::new(self.src.file, self.line(), &self.key, kind)
    }

    pub fn invalid(&self, msg: impl Into<String>) -> Error {
        self.error(ErrorKind::Invalid(msg.into()))
    }

    fn wrong(&self, expected: &'static str) -> Error {
        self.error(ErrorKind::WrongType { expected })
    }

    fn join(&self, name: &str) -> String {
        if self.key.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.key)
        }
    }

    /// The child under a map key.
    pub fn child(&self, key: &str, value: &'a Value) -> Node<'a> {
        let mut path = self.path.clone();
        path.push(Seg::Key(key.to_owned()));
        Node {
            value,
            src: self.src,
            path,
            key: self.join(key),
        }
    }

    /// The child at a list index, displayed as `name` when given, else `[i]`.
    pub fn item(&self, index: usize, value: &'a Value, name: Option<&str>) -> Node<'a> {
        let mut path = self.path.clone();
        path.push(Seg::Index(index));
        let key = match name {
            Some(n) => self.join(n),
            None => format!("{}[{index}]", self.key),
        };
        Node {
            value,
            src: self.src,
            path,
            key,
        }
    }

    pub fn is_null(&self) -> bool {
        self.value.is_null()
    }

    /// A map's entries in file order, keys as strings.
    pub fn entries(&self) -> Result<Vec<(String, Node<'a>)>, Error> {
        let Value::Mapping(map) = self.value else {
            return Err(self.wrong("a map"));
        };
        map.iter()
            .map(|(k, v)| {
                let key = scalar(k).ok_or_else(|| self.invalid("map keys must be strings"))?;
                Ok((key.clone(), self.child(&key, v)))
            })
            .collect()
    }

    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        let Value::Mapping(map) = self.value else { return None };
        map.get(key).map(|v| self.child(key, v))
    }

    /// Fails with "not supported" on the first key not in `allowed`.
    pub fn only_keys(&self, allowed: &[&str]) -> Result<(), Error> {
        for (k, node) in self.entries()? {
            if !allowed.contains(&k.as_str()) {
                return Err(node.error(ErrorKind::NotSupported));
            }
        }
        Ok(())
    }

    pub fn string(&self) -> Result<String, Error> {
        scalar(self.value).ok_or_else(|| self.wrong("a string"))
    }

    pub fn boolean(&self) -> Result<bool, Error> {
        match self.value {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            _ => Err(self.wrong("true or false")),
        }
    }

    /// A list's items.
    pub fn items(&self) -> Result<Vec<Node<'a>>, Error> {
        let Value::Sequence(seq) = self.value else {
            return Err(self.wrong("a list"));
        };
        Ok(seq.iter().enumerate().map(|(i, v)| self.item(i, v, None)).collect())
    }

    /// A string or a list of strings (Woodpecker's `StringOrSlice`).
    pub fn strings(&self) -> Result<Vec<String>, Error> {
        match self.value {
            Value::Null => Ok(Vec::new()),
            Value::Sequence(_) => self
                .items()?
                .iter()
                .map(|n| {
                    scalar(n.value).ok_or_else(|| {
                        let hint = if n.value.is_mapping() {
                            " (quote it: it contains `: `)"
                        } else {
                            ""
                        };
                        n.invalid(format!("expected a string{hint}"))
                    })
                })
                .collect(),
            v => scalar(v)
                .map(|s| vec![s])
                .ok_or_else(|| self.wrong("a string or a list of strings")),
        }
    }
}

/// A scalar as text (strings, numbers, booleans).
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
