//! `${VAR}` substitution over the raw pipeline text, as Woodpecker does before parsing with
//! drone/envsubst, by its grammar and functions: `$$` is a literal `$`; only `${...}` is
//! substituted (`$HOME` stays for the shell); an unknown variable is empty (so `:-` and `=`
//! give the default for unknown and empty alike); a value with a newline is inserted quoted.
//! Functions: `${#v}` (byte length), `${v^}` `${v^^}` `${v,}` `${v,,}`, `${v:pos}`
//! `${v:pos:len}` (bytes, negative pos from the end), `${v#p}` `${v##p}` `${v%p}` `${v%%p}`
//! (Go's `path.Match` globs), `${v/p/r}` `${v//p/r}` `${v/#p/r}` `${v/%p/r}`, and the defaults
//! `${v:-d}` `${v:=d}` `${v:?d}` `${v:+d}` `${v=d}` (all "default when empty"), with `${...}`
//! nested in arguments. What envsubst rejects is an error here too (`${}`, `${a b}`, `${a-b}`,
//! an unclosed `${`), with its line.
//!
//! One pass over the text, output written as it goes: linear in the text, with nesting bounded
//! by [`MAX_NESTING`] and glob matching by a work budget, so a hostile file cannot make it
//! quadratic. Pure.

/// The deepest `${` inside another's argument.
pub const MAX_NESTING: usize = 32;

/// Glob comparisons allowed for one text.
const GLOB_BUDGET: usize = 20_000_000;

/// Substitutes `text`. The error carries the 1-based line of the bad expression.
pub fn substitute(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, (usize, String)> {
    let mut s = Subst {
        src: text.as_bytes(),
        text,
        pos: 0,
        depth: 0,
        budget: GLOB_BUDGET,
        lookup,
    };
    let mut out = String::with_capacity(text.len());
    s.text_until(&mut out, |_| false, Esc::Dollar, false)?;
    Ok(out)
}

/// Which escapes a piece of text knows: `$$` at the top level; none in most arguments; `$$`,
/// `\/` and `\\` in the arguments of a replacement.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Esc {
    Dollar,
    None,
    All,
}

struct Subst<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    depth: usize,
    budget: usize,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Subst<'_> {
    fn fail(&self, at: usize, msg: &str) -> (usize, String) {
        let line = self.text.as_bytes()[..at.min(self.src.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        (line, msg.to_owned())
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    /// Copies text to `out` until `stop` says so (not consumed) or the end. At the top level
    /// (`nested_ends` false) a `${` is evaluated in place; in an argument it ends the text, as
    /// envsubst makes it the next argument. `esc` says which escapes apply.
    fn text_until(
        &mut self,
        out: &mut String,
        stop: impl Fn(u8) -> bool,
        esc: Esc,
        nested_ends: bool,
    ) -> Result<(), (usize, String)> {
        let mut run = self.pos;
        while let Some(c) = self.peek() {
            if stop(c) {
                break;
            }
            let next = self.src.get(self.pos + 1).copied();
            match c {
                b'$' if next == Some(b'{') => {
                    if nested_ends {
                        break;
                    }
                    out.push_str(&self.text[run..self.pos]);
                    let start = self.pos;
                    self.pos += 2;
                    let value = self.expression(start)?;
                    out.push_str(&value);
                    run = self.pos;
                }
                b'$' if next == Some(b'$') && esc != Esc::None => {
                    out.push_str(&self.text[run..=self.pos]);
                    self.pos += 2;
                    run = self.pos;
                }
                b'\\' if esc == Esc::All && matches!(next, Some(b'/' | b'\\')) => {
                    out.push_str(&self.text[run..self.pos]);
                    self.pos += 1;
                    run = self.pos;
                    self.pos += 1;
                }
                _ => self.pos += 1,
            }
        }
        out.push_str(&self.text[run..self.pos]);
        Ok(())
    }

    /// After `${`: the expression up to and including its `}`, evaluated.
    fn expression(&mut self, start: usize) -> Result<String, (usize, String)> {
        if self.depth >= MAX_NESTING {
            return Err(self.fail(start, &format!("`${{` nested more than {MAX_NESTING} deep")));
        }
        self.depth += 1;
        let r = self.expression_body(start);
        self.depth -= 1;
        r
    }

    fn expression_body(&mut self, start: usize) -> Result<String, (usize, String)> {
        let bad = |s: &Self, what: &str| {
            Err(s.fail(
                start,
                &format!("bad substitution: {what} (write `$${{` for a literal `${{`)"),
            ))
        };
        if self.peek() == Some(b'#') {
            self.pos += 1;
            let name = self.name();
            if name.is_empty() || self.peek() != Some(b'}') {
                return bad(self, "`${#NAME}` expected");
            }
            self.pos += 1;
            return Ok(self.value(&name).len().to_string());
        }
        let name = self.name();
        if name.is_empty() {
            return bad(self, "a variable name is missing");
        }
        let v = self.value(&name);
        let op_start = self.pos;
        let op_len = |s: &Self, allowed: &dyn Fn(usize, u8) -> bool| {
            let mut n = 0;
            while let Some(c) = s.src.get(op_start + n) {
                if !allowed(n, *c) {
                    break;
                }
                n += 1;
            }
            n
        };
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                Ok(v)
            }
            Some(b':') if matches!(self.src.get(self.pos + 1), Some(b'=' | b'-' | b'?' | b'+')) => {
                self.pos += 2;
                self.default(v)
            }
            Some(b'=') => {
                self.pos += 1;
                self.default(v)
            }
            Some(b':') => {
                self.pos += 1;
                let pos_arg = self.param(|c| c != b':' && c != b'}', Esc::None);
                let Some(pos_arg) = pos_arg? else {
                    return bad(self, "`${NAME:POSITION}` expected");
                };
                let len_arg = if self.peek() == Some(b':') {
                    self.pos += 1;
                    let len = self.param(|c| c != b'}', Esc::None)?;
                    if len.is_none() {
                        return bad(self, "`${NAME:POSITION:LENGTH}` expected");
                    }
                    len
                } else {
                    None
                };
                self.close(start)?;
                Ok(substring(&v, &pos_arg, len_arg.as_deref()))
            }
            Some(b',' | b'^') => {
                let n = op_len(self, &|i, c| i < 2 && (c == b',' || c == b'^'));
                let op = self.text[op_start..op_start + n].to_owned();
                self.pos += n;
                self.close(start)?;
                Ok(match op.as_str() {
                    "^^" => v.to_uppercase(),
                    ",," => v.to_lowercase(),
                    "^" => first_with(&v, |c| c.to_uppercase().collect()),
                    "," => first_with(&v, |c| c.to_lowercase().collect()),
                    _ => v,
                })
            }
            Some(c @ (b'#' | b'%')) => {
                let n = op_len(self, &|i, x| i < 2 && x == c);
                self.pos += n;
                let Some(pattern) = self.param(|c| c != b'}', Esc::None)? else {
                    return bad(self, "a pattern is missing");
                };
                self.close(start)?;
                let (suffix, longest) = (c == b'%', n == 2);
                self.trim(&v, &pattern, suffix, longest)
                    .ok_or_else(|| self.fail(start, "the pattern takes too long to match against the value"))
            }
            Some(b'/') => {
                let n = op_len(self, &|i, c| {
                    i == 0 && c == b'/' || i == 1 && matches!(c, b'/' | b'#' | b'%')
                });
                let op = self.text[op_start..op_start + n].to_owned();
                self.pos += n;
                let Some(pattern) = self.param(|c| c != b'/', Esc::All)? else {
                    return bad(self, "a pattern is missing");
                };
                if self.peek() != Some(b'/') {
                    return bad(self, "`${NAME/PATTERN/REPLACEMENT}` expected");
                }
                self.pos += 1;
                let replacement = if self.peek() == Some(b'}') {
                    None
                } else {
                    self.param(|c| c != b'}', Esc::All)?
                };
                self.close(start)?;
                Ok(replace(&v, &op, &pattern, replacement.as_deref()))
            }
            _ => bad(self, "`}` expected"),
        }
    }

    /// A variable name: letters, digits and `_`.
    fn name(&mut self) -> String {
        let rest = &self.text[self.pos..];
        let end = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        self.pos += end;
        rest[..end].to_owned()
    }

    fn value(&self, name: &str) -> String {
        (self.lookup)(name).unwrap_or_default()
    }

    /// One argument: a nested `${...}` or a run of bytes that `accept` takes (ending at the next
    /// `${` too); `None` when there is neither.
    fn param(&mut self, accept: impl Fn(u8) -> bool, esc: Esc) -> Result<Option<String>, (usize, String)> {
        if self.src.get(self.pos) == Some(&b'$') && self.src.get(self.pos + 1) == Some(&b'{') {
            let start = self.pos;
            self.pos += 2;
            return self.expression(start).map(Some);
        }
        let before = self.pos;
        let mut out = String::new();
        self.text_until(&mut out, |c| !accept(c), esc, true)?;
        Ok((self.pos > before).then_some(out))
    }

    /// `${v:-a${b}c}`: the arguments joined, used when `v` is empty.
    fn default(&mut self, v: String) -> Result<String, (usize, String)> {
        let start = self.pos;
        let mut args = String::new();
        loop {
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(if v.is_empty() { args } else { v });
                }
                None => return Err(self.fail(start, "bad substitution: `}` expected (write `$${` for a literal `${`)")),
                _ => match self.param(|c| c != b'}', Esc::None)? {
                    Some(a) => args.push_str(&a),
                    None => return Err(self.fail(start, "bad substitution: `}` expected")),
                },
            }
        }
    }

    fn close(&mut self, start: usize) -> Result<(), (usize, String)> {
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        Err(self.fail(start, "bad substitution: `}` expected (write `$${` for a literal `${`)"))
    }

    /// envsubst's trims: the shortest or longest prefix (of the reversed text for suffixes)
    /// that the glob matches; `None` when matching would exceed the budget.
    fn trim(&mut self, v: &str, pattern: &str, suffix: bool, longest: bool) -> Option<String> {
        let rev = |s: &str| s.chars().rev().collect::<String>();
        let (s, p) = if suffix {
            (rev(v), rev(pattern))
        } else {
            (v.to_owned(), pattern.to_owned())
        };
        let b = s.as_bytes();
        let mut found: Option<usize> = None;
        for i in 0..b.len() {
            let end = b.len() - i;
            let cost = end.saturating_mul(p.len() + 1);
            self.budget = self.budget.checked_sub(cost)?;
            match path_match(p.as_bytes(), &b[..end]) {
                Err(BadPattern) => return Some(v.to_owned()),
                Ok(true) => {
                    found = Some(end);
                    if longest {
                        break;
                    }
                }
                Ok(false) => {}
            }
        }
        let out = match found {
            Some(end) => String::from_utf8_lossy(&b[end..]).into_owned(),
            None => s,
        };
        Some(if suffix { rev(&out) } else { out })
    }
}

fn first_with(v: &str, f: impl Fn(char) -> String) -> String {
    let mut chars = v.chars();
    match chars.next() {
        Some(c) => f(c) + chars.as_str(),
        None => String::new(),
    }
}

/// envsubst's `toSubstr`: byte positions, a negative position counts from the end.
fn substring(v: &str, pos: &str, len: Option<&str>) -> String {
    let b = v.as_bytes();
    let Ok(mut pos) = pos.parse::<i64>() else {
        return v.to_owned();
    };
    let n = b.len() as i64;
    if pos < 0 {
        pos = (n + pos).max(0);
    }
    let cut = |from: i64, to: i64| String::from_utf8_lossy(&b[from as usize..to as usize]).into_owned();
    let Some(len) = len else {
        return if pos < n { cut(pos, n) } else { String::new() };
    };
    let Ok(len) = len.parse::<i64>() else {
        return v.to_owned();
    };
    if pos.saturating_add(len) >= n {
        return if pos < n { cut(pos, n) } else { String::new() };
    }
    if len < 0 {
        return v.to_owned();
    }
    cut(pos, pos + len)
}

fn replace(v: &str, op: &str, pattern: &str, replacement: Option<&str>) -> String {
    let rep = replacement.unwrap_or("");
    match op {
        "//" => v.replace(pattern, rep),
        "/" => v.replacen(pattern, rep, 1),
        "/#" if replacement.is_some() && v.starts_with(pattern) => v.replacen(pattern, rep, 1),
        "/%" if replacement.is_some() && v.ends_with(pattern) => format!("{}{rep}", &v[..v.len() - pattern.len()]),
        _ => v.to_owned(),
    }
}

/// A glob `path.Match` cannot read (an open `[`, a trailing `\\`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPattern;

/// Go's `path.Match` on bytes: `*` any run without `/`, `?` one byte but `/`, `[...]` classes
/// (`^` negates, ranges), `\` escapes. `Err` for a malformed pattern.
pub fn path_match(pattern: &[u8], name: &[u8]) -> Result<bool, BadPattern> {
    let mut pattern = pattern;
    let mut name = name;
    'outer: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains(&b'/'));
        }
        let (t, ok) = match_chunk(chunk, name)?;
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok) = match_chunk(chunk, &name[i + 1..])?;
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'outer;
                }
                i += 1;
            }
        }
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while pattern.first() == Some(&b'*') {
        pattern = &pattern[1..];
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

fn match_chunk<'n>(mut chunk: &[u8], mut s: &'n [u8]) -> Result<(&'n [u8], bool), BadPattern> {
    let mut failed = false;
    while !chunk.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match chunk[0] {
            b'[' => {
                let r = if failed { 0 } else { s[0] };
                if !failed {
                    s = &s[1..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut n = 0;
                loop {
                    if !chunk.is_empty() && chunk[0] == b']' && n > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    n += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
            b'\\' => {
                chunk = &chunk[1..];
                if chunk.is_empty() {
                    return Err(BadPattern);
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
            c => {
                if !failed {
                    if c != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        return Ok((b"", false));
    }
    Ok((s, true))
}

fn get_esc(chunk: &[u8]) -> Result<(u8, &[u8]), BadPattern> {
    match chunk.first() {
        None | Some(b'-') | Some(b']') => Err(BadPattern),
        Some(b'\\') => match chunk.get(1) {
            Some(c) => Ok((*c, &chunk[2..])),
            None => Err(BadPattern),
        },
        Some(c) => {
            let rest = &chunk[1..];
            if rest.is_empty() {
                return Err(BadPattern);
            }
            Ok((*c, rest))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "GO" => Some("1.22".into()),
            "REF" => Some("refs/heads/feature/x".into()),
            "EMPTY" => Some(String::new()),
            "MULTI" => Some("a\nb".into()),
            "NAME" => Some("woodpecker".into()),
            _ => None,
        }
    }

    fn s(text: &str) -> String {
        substitute(text, &env).unwrap()
    }

    #[test]
    fn plain_escaped_and_unknown() {
        assert_eq!(s("image: golang:${GO}"), "image: golang:1.22");
        assert_eq!(s("echo $${GO} $$HOME $HOME $"), "echo ${GO} $HOME $HOME $");
        assert_eq!(s("x${NOPE}y"), "xy");
    }

    #[test]
    fn operators_as_envsubst_evaluates_them() {
        assert_eq!(
            s("${NAME^^} ${NAME^} ${#NAME} ${NAME,,}"),
            "WOODPECKER Woodpecker 10 woodpecker"
        );
        // Unknown and empty are the same to envsubst: every default form applies to both.
        assert_eq!(
            s("${NOPE:-dflt} ${EMPTY:-e} ${EMPTY=kept} ${NOPE:=x} ${NAME:-no}"),
            "dflt e kept x woodpecker"
        );
        assert_eq!(
            s("${NAME:4} ${NAME:0:4} ${NAME:-3} ${NAME: -3} ${NAME:4:100}"),
            "pecker wood woodpecker woodpecker pecker"
        );
        // Go's path.Match: `*` does not cross `/`.
        assert_eq!(
            s("${REF##*/} ${REF#refs/heads/} ${REF%/*} ${REF%%/*}"),
            "heads/feature/x feature/x refs/heads/feature refs/heads/feature"
        );
        assert_eq!(
            s("${REF/heads/tags} ${NAME//o/0} ${NAME/#wood/W} ${NAME/%er/ER} ${NAME/o/}"),
            "refs/tags/feature/x w00dpecker Wpecker woodpeckER wodpecker"
        );
        assert_eq!(s("${NOPE:-a${GO}b${NOPE:-c}}"), "a1.22bc");
    }

    #[test]
    fn what_envsubst_rejects_is_an_error_with_its_line() {
        for bad in [
            "a\nb: ${GO\n",
            "a\nb: ${}\n",
            "a\nb: ${A B}\n",
            "a\nb: ${A-b}\n",
            "a\nb: ${A/x}\n",
            "a\nb: ${A:}\n",
        ] {
            let e = substitute(bad, &env).unwrap_err();
            assert_eq!(e.0, 2, "{bad:?}: {e:?}");
            assert!(e.1.starts_with("bad substitution"), "{bad:?}: {e:?}");
        }
    }

    #[test]
    fn nesting_is_bounded_and_linear() {
        let n = 10_000;
        let text = format!("{}x{}", "${A:-".repeat(n), "}".repeat(n));
        let e = substitute(&text, &env).unwrap_err();
        assert!(e.1.contains("nested more than 32 deep"), "{e:?}");
        let ok = format!("{}x{}", "${A:-".repeat(30), "}".repeat(30));
        assert_eq!(substitute(&ok, &env).unwrap(), "x");
    }

    #[test]
    fn path_match_is_go_path_match() {
        let m = |p: &str, n: &str| path_match(p.as_bytes(), n.as_bytes());
        assert_eq!(m("*", "abc"), Ok(true));
        assert_eq!(m("*", "a/b"), Ok(false));
        assert_eq!(m("a*/b", "abc/b"), Ok(true));
        assert_eq!(m("[a-c]?", "bz"), Ok(true));
        assert_eq!(m("[^a-c]", "b"), Ok(false));
        assert_eq!(m("\\*", "*"), Ok(true));
        assert_eq!(m("[", "a"), Err(BadPattern));
    }
}
