//! `${VAR}` substitution over the raw pipeline text, as Woodpecker does before parsing (it uses
//! drone/envsubst): `$$` escapes a `$`; only the braced form is substituted; an unknown
//! variable becomes the empty string; a multi-line value is inserted quoted. Supports the
//! bash-like operators drone/envsubst documents: `${#v}`, `${v^}`, `${v^^}`, `${v,}`, `${v,,}`,
//! `${v:n}`, `${v:n:len}`, `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v-d}`, `${v:-d}`,
//! `${v=d}`, `${v:=d}`, `${v/p/r}`, `${v//p/r}`, `${v/#p/r}`, `${v/%p/r}`. Pure.

/// Substitutes `text`. The error carries the 1-based line of a malformed expression.
pub fn substitute(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body_start) = after.strip_prefix('{') {
            let end = closing(body_start).ok_or_else(|| {
                let line = text[..text.len() - rest.len() + at].matches('\n').count() + 1;
                (line, "unterminated `${` (write `$${` for a literal one)".to_string())
            })?;
            let value = eval(&body_start[..end], lookup);
            if value.contains('\n') {
                out.push_str(&serde_json::to_string(&value).unwrap_or_default());
            } else {
                out.push_str(&value);
            }
            rest = &body_start[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a body, allowing nested `${...}` in defaults.
fn closing(body: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            '\n' => return None,
            _ => {}
        }
    }
    None
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn eval(body: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    if let Some(name) = body.strip_prefix('#')
        && !name.is_empty()
        && name.chars().all(is_name_char)
    {
        return lookup(name).unwrap_or_default().chars().count().to_string();
    }
    let split = body.find(|c: char| !is_name_char(c)).unwrap_or(body.len());
    let (name, op) = body.split_at(split);
    let value = lookup(name);
    let v = value.clone().unwrap_or_default();
    let sub = |s: &str| substitute(s, lookup).unwrap_or_else(|_| s.to_owned());
    match op {
        "" => v,
        "^^" => v.to_uppercase(),
        ",," => v.to_lowercase(),
        "^" => first_with(&v, |c| c.to_uppercase().collect()),
        "," => first_with(&v, |c| c.to_lowercase().collect()),
        _ if op.starts_with(":-") || op.starts_with(":=") => {
            if v.is_empty() {
                sub(&op[2..])
            } else {
                v
            }
        }
        _ if op.starts_with('-') || op.starts_with('=') => {
            if value.is_none() {
                sub(&op[1..])
            } else {
                v
            }
        }
        _ if op.starts_with(':') => substring(&v, &op[1..]),
        _ if op.starts_with("##") => strip_prefix(&v, &op[2..], true),
        _ if op.starts_with('#') => strip_prefix(&v, &op[1..], false),
        _ if op.starts_with("%%") => strip_suffix(&v, &op[2..], true),
        _ if op.starts_with('%') => strip_suffix(&v, &op[1..], false),
        _ if op.starts_with('/') => replace(&v, &op[1..]),
        // Anything else is not an expression drone/envsubst knows: keep it as written.
        _ => format!("${{{body}}}"),
    }
}

fn first_with(v: &str, f: impl Fn(char) -> String) -> String {
    let mut chars = v.chars();
    match chars.next() {
        Some(c) => f(c) + chars.as_str(),
        None => String::new(),
    }
}

fn substring(v: &str, spec: &str) -> String {
    let chars: Vec<char> = v.chars().collect();
    let mut parts = spec.splitn(2, ':');
    let offset: usize = parts
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
        .min(chars.len());
    let len = parts.next().and_then(|s| s.trim().parse().ok()).unwrap_or(chars.len());
    chars[offset..].iter().take(len).collect()
}

/// Glob match of a whole string: `*` any run, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

fn char_bounds(v: &str) -> Vec<usize> {
    v.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(v.len()))
        .collect()
}

fn strip_prefix(v: &str, pat: &str, longest: bool) -> String {
    let mut bounds = char_bounds(v);
    if longest {
        bounds.reverse();
    }
    for i in bounds {
        if glob_match(pat, &v[..i]) {
            return v[i..].to_owned();
        }
    }
    v.to_owned()
}

fn strip_suffix(v: &str, pat: &str, longest: bool) -> String {
    let mut bounds = char_bounds(v);
    if !longest {
        bounds.reverse();
    }
    for i in bounds {
        if glob_match(pat, &v[i..]) {
            return v[..i].to_owned();
        }
    }
    v.to_owned()
}

fn replace(v: &str, spec: &str) -> String {
    let (mode, spec) = match spec.chars().next() {
        Some(c @ ('/' | '#' | '%')) => (c, &spec[1..]),
        _ => (' ', spec),
    };
    let (pat, rep) = spec.split_once('/').unwrap_or((spec, ""));
    if pat.is_empty() {
        return v.to_owned();
    }
    match mode {
        '/' => v.replace(pat, rep),
        '#' => v
            .strip_prefix(pat)
            .map(|r| format!("{rep}{r}"))
            .unwrap_or_else(|| v.to_owned()),
        '%' => v
            .strip_suffix(pat)
            .map(|r| format!("{r}{rep}"))
            .unwrap_or_else(|| v.to_owned()),
        _ => v.replacen(pat, rep, 1),
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
        assert_eq!(s("echo $${GO} $$HOME $HOME"), "echo ${GO} $HOME $HOME");
        assert_eq!(s("x${NOPE}y"), "xy");
        assert_eq!(s("v: ${MULTI}"), "v: \"a\\nb\"");
    }

    #[test]
    fn operators() {
        assert_eq!(s("${NAME^^} ${NAME^} ${#NAME}"), "WOODPECKER Woodpecker 10");
        assert_eq!(s("${NOPE:-dflt} ${EMPTY:-e} ${EMPTY-kept} ${NOPE=x}"), "dflt e  x");
        assert_eq!(s("${NAME:4} ${NAME:0:4}"), "pecker wood");
        assert_eq!(
            s("${REF##*/} ${REF#refs/heads/} ${REF%/*} ${REF%%/*}"),
            "x feature/x refs/heads/feature refs"
        );
        assert_eq!(
            s("${REF/heads/tags} ${NAME//o/0} ${NAME/#wood/W} ${NAME/%er/ER}"),
            "refs/tags/feature/x w00dpecker Wpecker woodpeckER"
        );
    }

    #[test]
    fn unterminated_is_an_error_with_its_line() {
        assert_eq!(
            substitute("a\nb: ${GO\n", &env),
            Err((2, "unterminated `${` (write `$${` for a literal one)".into()))
        );
    }
}
