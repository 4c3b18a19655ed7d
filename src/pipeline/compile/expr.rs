//! `when: evaluate:` expressions: the part of expr-lang that pipeline conditions use, over the
//! step environment. Literals (`"s"`, `'s'`, `true`, `false`, `nil`, `[a, b]`), variables
//! (unknown ones are `nil`), `==`, `!=`, `in`, `not in`, `contains`, `startsWith`, `endsWith`,
//! `matches` (RE2 syntax, as Go's regexp), `!`/`not`, `&&`/`and`, `||`/`or` and parentheses,
//! nested at most 64 deep. Anything else is an error naming it. Pure.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Nil,
    Bool(bool),
    Str(String),
    List(Vec<Val>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Ident(String),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "==", "!=", "<=", ">=", "<", ">", "&&", "||", "!", "(", ")", "[", "]", ",",
];

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    'next: while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err("unterminated string".into());
            }
            i += 1;
            out.push(Tok::Str(s));
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        for op in OPS {
            let len = op.len();
            if chars[i..].iter().take(len).collect::<String>() == *op {
                out.push(Tok::Op(op));
                i += len;
                continue 'next;
            }
        }
        return Err(format!("unexpected `{c}`"));
    }
    Ok(out)
}

/// The deepest nesting of parentheses, lists and negations.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    env: &'a BTreeMap<String, String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(w)) if w == word) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn or(&mut self) -> Result<Val, String> {
        let mut left = self.and()?;
        while self.eat_op("||") || self.eat_word("or") {
            let right = self.and()?;
            left = Val::Bool(truth(&left)? || truth(&right)?);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Val, String> {
        let mut left = self.not()?;
        while self.eat_op("&&") || self.eat_word("and") {
            let right = self.not()?;
            left = Val::Bool(truth(&left)? && truth(&right)?);
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Val, String> {
        if self.eat_op("!") || self.eat_word("not") {
            self.enter()?;
            let v = self.not();
            self.depth -= 1;
            return Ok(Val::Bool(!truth(&v?)?));
        }
        self.compare()
    }

    /// One level deeper into parentheses, lists or negations; bounded.
    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn compare(&mut self) -> Result<Val, String> {
        let left = self.primary()?;
        let negate = if matches!(self.peek(), Some(Tok::Ident(w)) if w == "not")
            && matches!(self.toks.get(self.pos + 1), Some(Tok::Ident(w)) if w == "in")
        {
            self.pos += 1;
            true
        } else {
            false
        };
        let op = match self.peek() {
            Some(Tok::Op(o @ ("==" | "!=" | "<" | ">" | "<=" | ">="))) => o.to_string(),
            Some(Tok::Ident(w)) if ["in", "contains", "startsWith", "endsWith", "matches"].contains(&w.as_str()) => {
                w.clone()
            }
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.primary()?;
        let s = |v: &Val| match v {
            Val::Str(s) => s.clone(),
            _ => String::new(),
        };
        let result = match op.as_str() {
            "==" => left == right,
            "!=" => left != right,
            "in" => match &right {
                Val::List(items) => items.contains(&left),
                Val::Str(s) => s.contains(&self::s(&left)),
                _ => false,
            },
            "<" | ">" | "<=" | ">=" => {
                let num = |v: &Val| {
                    s(v).parse::<f64>()
                        .map_err(|_| format!("`{op}` needs numbers, got {v:?}"))
                };
                let (a, b) = (num(&left)?, num(&right)?);
                match op.as_str() {
                    "<" => a < b,
                    ">" => a > b,
                    "<=" => a <= b,
                    _ => a >= b,
                }
            }
            "contains" => s(&left).contains(&s(&right)),
            "matches" => {
                let pattern = s(&right);
                let re = regex_lite::Regex::new(&pattern).map_err(|e| format!("`matches \"{pattern}\"`: {e}"))?;
                re.is_match(&s(&left))
            }
            "startsWith" => s(&left).starts_with(&s(&right)),
            "endsWith" => s(&left).ends_with(&s(&right)),
            other => return Err(format!("`{other}` is not supported")),
        };
        Ok(Val::Bool(result != negate))
    }

    fn primary(&mut self) -> Result<Val, String> {
        let tok = self.peek().cloned().ok_or("unexpected end of expression")?;
        self.pos += 1;
        match tok {
            Tok::Str(s) => Ok(Val::Str(s)),
            Tok::Op("(") => {
                self.enter()?;
                let v = self.or();
                self.depth -= 1;
                let v = v?;
                if !self.eat_op(")") {
                    return Err("missing `)`".into());
                }
                Ok(v)
            }
            Tok::Op("[") => {
                self.enter()?;
                let mut items = Vec::new();
                while !self.eat_op("]") {
                    let item = self.primary();
                    items.push(item?);
                    if !self.eat_op(",") && !matches!(self.peek(), Some(Tok::Op("]"))) {
                        return Err("expected `,` or `]`".into());
                    }
                }
                self.depth -= 1;
                Ok(Val::List(items))
            }
            Tok::Ident(w) => Ok(match w.as_str() {
                "true" => Val::Bool(true),
                "false" => Val::Bool(false),
                "nil" => Val::Nil,
                _ if w.starts_with(|c: char| c.is_ascii_digit()) => Val::Str(w.clone()),
                _ if w.contains('(') => return Err(format!("`{w}` is not supported")),
                _ if matches!(self.peek(), Some(Tok::Op("("))) => {
                    return Err(format!("function `{w}` is not supported"));
                }
                _ => self.env.get(&w).map(|v| Val::Str(v.clone())).unwrap_or(Val::Nil),
            }),
            Tok::Op(o) => Err(format!("unexpected `{o}`")),
        }
    }
}

fn s(v: &Val) -> String {
    match v {
        Val::Str(s) => s.clone(),
        _ => String::new(),
    }
}

fn truth(v: &Val) -> Result<bool, String> {
    match v {
        Val::Bool(b) => Ok(*b),
        other => Err(format!("expected a boolean, got {other:?}")),
    }
}

/// Evaluates an expression to a boolean.
pub fn evaluate(src: &str, env: &BTreeMap<String, String>) -> Result<bool, String> {
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
        depth: 0,
        env,
    };
    let v = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?}", p.toks[p.pos]));
    }
    truth(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("CI_COMMIT_BRANCH".into(), "main".into()),
            ("CI_PIPELINE_EVENT".into(), "manual".into()),
            ("CI_COMMIT_MESSAGE".into(), "fix: [deploy] now".into()),
        ])
    }

    #[test]
    fn evaluates_conditions() {
        let e = env();
        assert_eq!(evaluate(r#"CI_COMMIT_BRANCH == "main""#, &e), Ok(true));
        assert_eq!(
            evaluate(r#"CI_COMMIT_BRANCH != 'main' || CI_PIPELINE_EVENT == "manual""#, &e),
            Ok(true)
        );
        assert_eq!(evaluate(r#"CI_PIPELINE_EVENT in ["push", "tag"]"#, &e), Ok(false));
        assert_eq!(evaluate(r#"CI_PIPELINE_EVENT not in ["push", "tag"]"#, &e), Ok(true));
        assert_eq!(
            evaluate(r#"CI_COMMIT_MESSAGE contains "[deploy]" and not (CI_X == "y")"#, &e),
            Ok(true)
        );
        assert_eq!(evaluate(r#"CI_COMMIT_BRANCH startsWith "ma" && !false"#, &e), Ok(true));
        assert_eq!(evaluate(r#"CI_UNKNOWN == nil"#, &e), Ok(true));
        assert_eq!(
            evaluate(
                r#"CI_PIPELINE_NUMBER >= 2"#,
                &BTreeMap::from([("CI_PIPELINE_NUMBER".into(), "3".into())])
            ),
            Ok(true)
        );
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        let e = env();
        assert_eq!(evaluate(r#"CI_COMMIT_BRANCH matches "^m""#, &e), Ok(true));
        assert_eq!(
            evaluate(r#"CI_COMMIT_BRANCH matches "^v?[0-9]+\\.[0-9]+$""#, &e),
            Ok(false)
        );
        assert!(
            evaluate(r#"CI_COMMIT_BRANCH matches "(""#, &e)
                .unwrap_err()
                .starts_with("`matches \"(\"`")
        );
        let deep = format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(evaluate(&deep, &e), Err("nested deeper than 64 levels".into()));
        let nots = format!("{}true", "!".repeat(10_000));
        assert_eq!(evaluate(&nots, &e), Err("nested deeper than 64 levels".into()));
        assert_eq!(crate::pipeline::error::shorten(&deep).len(), 83);
        assert_eq!(
            evaluate(r#"len(CI_COMMIT_BRANCH) > 2"#, &e),
            Err("function `len` is not supported".into())
        );
        assert_eq!(
            evaluate(r#"CI_COMMIT_BRANCH"#, &e),
            Err("expected a boolean, got Str(\"main\")".into())
        );
    }
}
