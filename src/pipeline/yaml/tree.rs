//! YAML text to a tree that knows the line and column of every node, built from libyaml's
//! events ([`super::events`]) the way Woodpecker's parser (yaml.v4 behind 6543/xyaml) sees a
//! file: the first document only; anchors and aliases; `<<` merges of maps (explicit keys win,
//! the first source wins among several) and of sequences (`- <<: *list` splices the list in,
//! `- <<: [*a, *b]` splices both); duplicate keys are an error; plain scalars resolve to null,
//! bool, int or float by YAML 1.2's core rules (Go's `ParseInt(s, 0, 64)` for ints).
//!
//! Bounded cost, because a pipeline file is untrusted input: nesting deeper than [`MAX_DEPTH`]
//! stops the parse at once (before libyaml scans further), and aliases may copy at most about
//! twice the document's own size ([`Tree::alias_budget`]) before the parse fails, so a
//! "billion laughs" file costs no more than its size. Pure.

use std::collections::{HashMap, HashSet};

use super::events::{Mark, Parser, SyntaxError, YamlEvent};

/// The deepest nesting of lists and maps accepted. Woodpecker's deepest real use is
/// `backend_options` (node affinity, about ten levels).
pub const MAX_DEPTH: usize = 100;

/// A node and where it was written (1-based; 0 for an empty document).
#[derive(Debug, Clone, PartialEq)]
pub struct Yaml {
    pub line: u32,
    pub col: u32,
    pub v: V,
}

#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Scalar(Scalar),
    Seq(Vec<Yaml>),
    /// Entries in file order (merged entries where their `<<` was).
    Map(Vec<(Yaml, Yaml)>),
}

/// A scalar: its text as written (after YAML unescaping) and what it resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str,
    /// A plain `<<` key (only seen while building).
    Merge,
}

/// Why a text is not a tree: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeError {
    pub line: u32,
    pub msg: String,
}

impl Yaml {
    fn scalar(mark: Mark, text: String, kind: Kind) -> Yaml {
        Yaml {
            line: mark.line,
            col: mark.col,
            v: V::Scalar(Scalar { text, kind }),
        }
    }

    pub fn null() -> Yaml {
        Yaml::scalar(Mark::default(), String::new(), Kind::Null)
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.v, V::Scalar(s) if s.kind == Kind::Null)
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.v {
            V::Scalar(s) => Some(s),
            _ => None,
        }
    }

    fn is_merge_key(&self) -> bool {
        matches!(&self.v, V::Scalar(s) if s.kind == Kind::Merge)
    }

    /// A map's value under a plain string key.
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        match &self.v {
            V::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_scalar().is_some_and(|s| s.text == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Nodes plus scalar bytes: what copying this node costs.
    fn cost(&self) -> usize {
        let mut total = 0;
        let mut stack = vec![self];
        while let Some(n) = stack.pop() {
            total += 1;
            match &n.v {
                V::Scalar(s) => total += s.text.len(),
                V::Seq(items) => stack.extend(items),
                V::Map(entries) => stack.extend(entries.iter().flat_map(|(k, v)| [k, v])),
            }
        }
        total
    }

    /// A map that is only `<<: [list...]`: a sequence merge waiting for its list.
    fn pending_splice(&self) -> Option<&Vec<Yaml>> {
        let V::Map(entries) = &self.v else { return None };
        let [(k, v)] = entries.as_slice() else { return None };
        match &v.v {
            V::Seq(items) if k.is_merge_key() && !items.iter().all(|i| matches!(i.v, V::Map(_))) => Some(items),
            _ => None,
        }
    }
}

/// Parses the first document of `text` (an empty text is a null document).
pub fn parse(text: &str) -> Result<Yaml, TreeError> {
    Tree::new(text).run()
}

enum Frame {
    Seq {
        mark: Mark,
        anchor: Option<String>,
        items: Vec<Yaml>,
    },
    Map {
        mark: Mark,
        anchor: Option<String>,
        entries: Vec<(Yaml, Yaml)>,
        key: Option<Yaml>,
    },
}

struct Tree<'a> {
    parser: Parser<'a>,
    frames: Vec<Frame>,
    anchors: HashMap<String, (Yaml, usize)>,
    /// What aliases may still copy.
    alias_budget: usize,
}

fn syntax(e: SyntaxError) -> TreeError {
    let msg = match e.context {
        Some(c) => format!("not valid YAML: {}, {c}", e.problem),
        None => format!("not valid YAML: {}", e.problem),
    };
    TreeError { line: e.mark.line, msg }
}

fn err(mark: Mark, msg: impl Into<String>) -> TreeError {
    TreeError {
        line: mark.line,
        msg: msg.into(),
    }
}

impl<'a> Tree<'a> {
    fn new(text: &'a str) -> Self {
        Tree {
            parser: Parser::new(text),
            frames: Vec::new(),
            anchors: HashMap::new(),
            alias_budget: text.len().saturating_mul(2).saturating_add(10_000),
        }
    }

    fn run(mut self) -> Result<Yaml, TreeError> {
        let mut root: Option<Yaml> = None;
        loop {
            let (event, mark) = self.parser.next_event().map_err(syntax)?;
            let done = match event {
                YamlEvent::StreamStart | YamlEvent::DocumentStart => None,
                YamlEvent::StreamEnd | YamlEvent::DocumentEnd => break,
                YamlEvent::Alias(name) => {
                    let Some((node, cost)) = self.anchors.get(&name) else {
                        return Err(err(mark, format!("unknown anchor `{name}`")));
                    };
                    if *cost > self.alias_budget {
                        return Err(err(
                            mark,
                            format!("alias `*{name}`: aliases expand this document to more than twice its size"),
                        ));
                    }
                    self.alias_budget -= cost;
                    // The copy keeps the anchor's lines: where its content was written.
                    Some(node.clone())
                }
                YamlEvent::Scalar {
                    anchor,
                    tag,
                    value,
                    plain,
                } => {
                    let kind = resolve(&value, plain, tag.as_deref());
                    let node = Yaml::scalar(mark, value, kind);
                    self.remember(anchor, &node);
                    Some(node)
                }
                YamlEvent::SequenceStart { anchor, .. } => {
                    self.open(mark)?;
                    self.frames.push(Frame::Seq {
                        mark,
                        anchor,
                        items: Vec::new(),
                    });
                    None
                }
                YamlEvent::MappingStart { anchor, .. } => {
                    self.open(mark)?;
                    self.frames.push(Frame::Map {
                        mark,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    });
                    None
                }
                YamlEvent::SequenceEnd => match self.frames.pop() {
                    Some(Frame::Seq { mark, anchor, items }) => {
                        let node = Yaml {
                            line: mark.line,
                            col: mark.col,
                            v: V::Seq(splice(items)),
                        };
                        self.remember(anchor, &node);
                        Some(node)
                    }
                    _ => return Err(err(mark, "not valid YAML: unbalanced sequence")),
                },
                YamlEvent::MappingEnd => match self.frames.pop() {
                    Some(Frame::Map {
                        mark, anchor, entries, ..
                    }) => {
                        let node = Yaml {
                            line: mark.line,
                            col: mark.col,
                            v: V::Map(merge(entries)?),
                        };
                        self.remember(anchor, &node);
                        Some(node)
                    }
                    _ => return Err(err(mark, "not valid YAML: unbalanced mapping")),
                },
            };
            if let Some(node) = done {
                match self.frames.last_mut() {
                    None => {
                        no_loose_splice(&node)?;
                        root = Some(node);
                    }
                    Some(Frame::Seq { items, .. }) => items.push(node),
                    Some(Frame::Map { entries, key, .. }) => match key.take() {
                        None => *key = Some(node),
                        Some(k) => {
                            no_loose_splice(&node)?;
                            entries.push((k, node));
                        }
                    },
                }
            }
        }
        Ok(root.unwrap_or_else(Yaml::null))
    }

    fn open(&self, mark: Mark) -> Result<(), TreeError> {
        if self.frames.len() >= MAX_DEPTH {
            return Err(err(
                mark,
                format!("lists and maps nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn remember(&mut self, anchor: Option<String>, node: &Yaml) {
        if let Some(name) = anchor {
            self.anchors.insert(name, (node.clone(), node.cost()));
        }
    }
}

/// `key: {<<: [not maps]}` outside a list: nothing to splice into.
fn no_loose_splice(node: &Yaml) -> Result<(), TreeError> {
    if node.pending_splice().is_some() {
        return Err(TreeError {
            line: node.line,
            msg: "bad `<<` merge: a list merges only into an item of a list (`- <<: *list`); here a map or a list of maps is expected".into(),
        });
    }
    Ok(())
}

/// Sequence merges: `- <<: *list` is replaced by the list's items; `- <<: [*a, *b]` by the items
/// of each (when every element is itself a list).
fn splice(items: Vec<Yaml>) -> Vec<Yaml> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if item.pending_splice().is_none() {
            out.push(item);
            continue;
        }
        let V::Map(mut entries) = item.v else { unreachable!() };
        let (_, value) = entries.remove(0);
        let V::Seq(list) = value.v else { unreachable!() };
        let all_lists = !list.is_empty() && list.iter().all(|l| matches!(l.v, V::Seq(_)));
        if all_lists {
            for l in list {
                if let V::Seq(inner) = l.v {
                    out.extend(inner);
                }
            }
        } else {
            out.extend(list);
        }
    }
    out
}

/// Map merges (`<<: *map`, `<<: [*a, *b]`) and the duplicate-key check.
fn merge(entries: Vec<(Yaml, Yaml)>) -> Result<Vec<(Yaml, Yaml)>, TreeError> {
    let mut explicit: HashMap<&str, u32> = HashMap::with_capacity(entries.len());
    for (k, _) in &entries {
        if let Some(s) = k.as_scalar()
            && s.kind != Kind::Merge
            && let Some(first) = explicit.insert(&s.text, k.line)
        {
            return Err(TreeError {
                line: k.line,
                msg: format!("`{}` is written twice in one map (first on line {first})", s.text),
            });
        }
    }
    if !entries.iter().any(|(k, _)| k.is_merge_key()) {
        return Ok(entries);
    }
    if let [(k, v)] = entries.as_slice()
        && k.is_merge_key()
        && matches!(&v.v, V::Seq(items) if !items.iter().all(|i| matches!(i.v, V::Map(_))))
    {
        // `- <<: *list`: a sequence merge, spliced by the list around it.
        return Ok(entries);
    }
    let mut seen: HashSet<String> = explicit.keys().map(|k| (*k).to_owned()).collect();
    let mut out = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        if !k.is_merge_key() {
            out.push((k, v));
            continue;
        }
        let sources = match v.v {
            V::Map(_) => vec![v],
            V::Seq(items) if items.iter().all(|i| matches!(i.v, V::Map(_))) => items,
            _ => {
                return Err(TreeError {
                    line: k.line,
                    msg: "bad `<<` merge: expected a map or a list of maps".into(),
                });
            }
        };
        for src in sources {
            let V::Map(src_entries) = src.v else { continue };
            for (sk, sv) in src_entries {
                let fresh = match sk.as_scalar() {
                    Some(s) => seen.insert(s.text.clone()),
                    None => true,
                };
                if fresh {
                    out.push((sk, sv));
                }
            }
        }
    }
    Ok(out)
}

const STR: &str = "tag:yaml.org,2002:str";

/// What a scalar resolves to: quoted ones and `!!str` are strings; plain ones by the core schema.
fn resolve(text: &str, plain: bool, tag: Option<&str>) -> Kind {
    match tag {
        Some(STR) | Some("!") => return Kind::Str,
        Some("tag:yaml.org,2002:null") => return Kind::Null,
        Some(t) if t.starts_with("tag:yaml.org,2002:") => return resolve_plain(text).unwrap_or(Kind::Str),
        _ => {}
    }
    if !plain {
        return Kind::Str;
    }
    if text == "<<" {
        return Kind::Merge;
    }
    resolve_plain(text).unwrap_or(Kind::Str)
}

fn resolve_plain(text: &str) -> Option<Kind> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Kind::Null),
        "true" | "True" | "TRUE" => return Some(Kind::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Kind::Bool(false)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(Kind::Float(f64::INFINITY)),
        "-.inf" | "-.Inf" | "-.INF" => return Some(Kind::Float(f64::NEG_INFINITY)),
        ".nan" | ".NaN" | ".NAN" => return Some(Kind::Float(f64::NAN)),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    let plain = text.replace('_', "");
    if let Some(i) = go_parse_int(&plain) {
        return Some(Kind::Int(i));
    }
    if is_yaml_float(&plain) {
        return plain.parse::<f64>().ok().map(Kind::Float);
    }
    None
}

/// Go's `strconv.ParseInt(s, 0, 64)`: sign, then `0x`, `0o`, `0b`, a leading `0` (octal) or decimal.
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if neg { -v } else { v }).ok()
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(y: &Yaml) -> Vec<String> {
        match &y.v {
            V::Seq(items) => items
                .iter()
                .map(|i| i.as_scalar().map(|s| s.text.clone()).unwrap_or_default())
                .collect(),
            _ => panic!("not a list: {y:?}"),
        }
    }

    #[test]
    fn lines_of_every_node_in_every_indentation_style() {
        let doc = parse("steps:\n- name: a\n  image: x\n-   name: b\n    image: [y,\n      z]\n").unwrap();
        let steps = doc.get("steps").unwrap();
        let V::Seq(items) = &steps.v else { panic!() };
        assert_eq!((items[0].line, items[1].line), (2, 4));
        assert_eq!(items[0].get("image").unwrap().line, 3);
        let image = items[1].get("image").unwrap();
        let V::Seq(list) = &image.v else { panic!() };
        assert_eq!((list[0].line, list[1].line, list[1].col), (5, 6, 7));
    }

    #[test]
    fn scalars_resolve_like_go_yaml() {
        let doc = parse("a: [1, 0x1F, 010, -3, 1.5, 1e3, .5, true, ~, '1', yes, 1.10, 1_000]\n").unwrap();
        let V::Seq(items) = &doc.get("a").unwrap().v else {
            panic!()
        };
        let kinds: Vec<Kind> = items.iter().map(|i| i.as_scalar().unwrap().kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Int(1),
                Kind::Int(31),
                Kind::Int(8),
                Kind::Int(-3),
                Kind::Float(1.5),
                Kind::Float(1000.0),
                Kind::Float(0.5),
                Kind::Bool(true),
                Kind::Null,
                Kind::Str,
                Kind::Str,
                Kind::Float(1.1),
                Kind::Int(1000),
            ]
        );
        assert_eq!(items[11].as_scalar().unwrap().text, "1.10");
    }

    #[test]
    fn map_merges_keep_explicit_keys_and_the_first_source() {
        let doc = parse("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  x: 0\n  <<: [*a, *b]\n").unwrap();
        let c = doc.get("c").unwrap();
        let got: Vec<(String, String)> = match &c.v {
            V::Map(e) => e
                .iter()
                .map(|(k, v)| (k.as_scalar().unwrap().text.clone(), v.as_scalar().unwrap().text.clone()))
                .collect(),
            _ => panic!(),
        };
        assert_eq!(
            got,
            [
                ("x".into(), "0".into()),
                ("y".into(), "1".into()),
                ("z".into(), "2".into())
            ]
        );
        // The merged `y` points at the line its anchor wrote it on.
        assert_eq!(c.get("y").unwrap().line, 1);
    }

    #[test]
    fn sequence_merges_splice_lists() {
        let doc = parse(
            "v:\n  - &pre [a, b]\n  - &post [z]\npath:\n  - <<: *pre\n  - m\n  - <<: *post\nboth:\n  - <<: [*pre, *post]\n  - end\n",
        )
        .unwrap();
        assert_eq!(texts(doc.get("path").unwrap()), ["a", "b", "m", "z"]);
        assert_eq!(texts(doc.get("both").unwrap()), ["a", "b", "z", "end"]);
        let e = parse("l: &l [a]\nm:\n  <<: *l\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.msg.starts_with("bad `<<` merge"), "{}", e.msg);
    }

    #[test]
    fn duplicate_keys_unknown_anchors_and_syntax() {
        assert_eq!(
            parse("a: 1\nb: 2\na: 3\n").unwrap_err(),
            TreeError {
                line: 3,
                msg: "`a` is written twice in one map (first on line 1)".into()
            }
        );
        assert_eq!(parse("a: *nope\n").unwrap_err().msg, "unknown anchor `nope`");
        assert_eq!(parse("a: [\n").unwrap_err().line, 2);
        assert!(parse("").unwrap().is_null());
        // Only the first document counts.
        assert_eq!(parse("a: 1\n---\n: [\n").unwrap().get("a").unwrap().line, 1);
    }

    #[test]
    fn nesting_and_aliases_are_bounded() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let start = std::time::Instant::now();
        let e = parse(&deep).unwrap_err();
        assert!(e.msg.contains("nested deeper than 100 levels"), "{}", e.msg);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..12 {
            let prev = if i == 0 { "a".to_string() } else { format!("l{}", i - 1) };
            bomb.push_str(&format!("l{i}: &l{i} [{}]\n", vec![format!("*{prev}"); 10].join(", ")));
        }
        let e = parse(&bomb).unwrap_err();
        assert!(e.msg.contains("more than twice its size"), "{}", e.msg);
    }
}
