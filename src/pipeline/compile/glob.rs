//! The glob dialect of `when:` (bmatcuk/doublestar, which Woodpecker's constraints use): `*`
//! any run without `/`, `**` as a path segment any run of segments (`a/**/b` matches `a/b`),
//! `?` one character but `/`, `[abc]` `[a-z]` `[!x]` `[^x]` classes, `{a,b}` alternatives and
//! `\` escapes. Matched by an NFA in one pass: time is pattern length times text length, never
//! exponential. Pure.

/// The most alternatives a `{a,b}` pattern expands into; more never matches.
const MAX_ALTERNATIVES: usize = 256;

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**`: anything, separators included.
    Any,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    expand(pattern)
        .map(|alts| alts.iter().any(|p| nfa(p, text)))
        .unwrap_or(false)
}

/// `{a,b}x` -> `ax`, `bx` (nested braces too); `None` past [`MAX_ALTERNATIVES`].
fn expand(pattern: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut depth = 0;
    let mut open = None;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '{' => {
                if depth == 0 {
                    open = Some(i);
                }
                depth += 1;
            }
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    let start = open?;
                    let prefix: String = chars[..start].iter().collect();
                    let suffix: String = chars[i + 1..].iter().collect();
                    let mut parts = Vec::new();
                    let (mut d, mut from) = (0, start + 1);
                    let mut j = start + 1;
                    while j < i {
                        match chars[j] {
                            '\\' => j += 1,
                            '{' => d += 1,
                            '}' => d -= 1,
                            ',' if d == 0 => {
                                parts.push(chars[from..j].iter().collect::<String>());
                                from = j + 1;
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                    parts.push(chars[from..i].iter().collect::<String>());
                    let mut out = Vec::new();
                    for part in parts {
                        for tail in expand(&format!("{part}{suffix}"))? {
                            out.push(format!("{prefix}{tail}"));
                            if out.len() > MAX_ALTERNATIVES {
                                return None;
                            }
                        }
                    }
                    return Some(out);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Some(vec![pattern.to_owned()])
}

/// Tokens plus, per position, where an empty match may jump to.
fn compile(pattern: &str) -> Option<(Vec<Tok>, Vec<Option<usize>>)> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut skip: Vec<Option<usize>> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let seg_start = i == 0 || chars[i - 1] == '/';
                let mut end = i;
                while chars.get(end) == Some(&'*') {
                    end += 1;
                }
                let seg_end = end == chars.len() || chars[end] == '/';
                if seg_start && seg_end {
                    if chars.get(end) == Some(&'/') {
                        // `**/`: zero or more whole segments.
                        let at = toks.len();
                        toks.push(Tok::Any);
                        skip.push(Some(at + 2));
                        toks.push(Tok::Lit('/'));
                        skip.push(None);
                        i = end + 1;
                        continue;
                    }
                    if i > 0 && matches!(toks.last(), Some(Tok::Lit('/'))) {
                        // `/**` at the end: the directory itself or anything below it.
                        let slash = toks.len() - 1;
                        skip[slash] = Some(slash + 2);
                    }
                    toks.push(Tok::Any);
                    skip.push(Some(toks.len()));
                } else {
                    toks.push(Tok::Star);
                    skip.push(Some(toks.len()));
                }
                i = end;
                continue;
            }
            '*' => {
                toks.push(Tok::Star);
                skip.push(Some(toks.len()));
            }
            '?' => {
                toks.push(Tok::One);
                skip.push(None);
            }
            '\\' => {
                i += 1;
                toks.push(Tok::Lit(*chars.get(i)?));
                skip.push(None);
            }
            '[' => {
                let mut j = i + 1;
                let negated = matches!(chars.get(j), Some('!' | '^'));
                if negated {
                    j += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let c = *chars.get(j)?;
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    let lo = if c == '\\' {
                        j += 1;
                        *chars.get(j)?
                    } else {
                        c
                    };
                    j += 1;
                    let mut hi = lo;
                    if chars.get(j) == Some(&'-') && chars.get(j + 1).is_some_and(|c| *c != ']') {
                        hi = chars[j + 1];
                        j += 2;
                    }
                    ranges.push((lo, hi));
                }
                toks.push(Tok::Class { negated, ranges });
                skip.push(None);
                i = j;
            }
            c => {
                toks.push(Tok::Lit(c));
                skip.push(None);
            }
        }
        i += 1;
    }
    Some((toks, skip))
}

fn nfa(pattern: &str, text: &str) -> bool {
    let Some((toks, skip)) = compile(pattern) else {
        return false;
    };
    let n = toks.len();
    let mut current = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    let close = |set: &mut Vec<bool>| {
        for p in 0..n {
            if set[p]
                && let Some(to) = skip[p]
            {
                set[to.min(n)] = true;
            }
        }
    };
    current[0] = true;
    close(&mut current);
    for c in text.chars() {
        next.iter_mut().for_each(|b| *b = false);
        for p in 0..n {
            if !current[p] {
                continue;
            }
            match &toks[p] {
                Tok::Lit(x) if *x == c => next[p + 1] = true,
                Tok::One if c != '/' => next[p + 1] = true,
                Tok::Star if c != '/' => next[p] = true,
                Tok::Any => next[p] = true,
                Tok::Class { negated, ranges }
                    if c != '/' && ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated =>
                {
                    next[p + 1] = true;
                }
                _ => {}
            }
        }
        close(&mut next);
        std::mem::swap(&mut current, &mut next);
        if !current.iter().any(|b| *b) {
            return false;
        }
    }
    current[n]
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn doublestar_rules() {
        assert!(matches("main", "main"));
        assert!(matches("release/*", "release/1.0"));
        assert!(!matches("release/*", "release/1.0/hotfix"));
        assert!(matches("release/**", "release/1.0/hotfix"));
        assert!(matches("release/**", "release"));
        assert!(matches("**/*.go", "main.go"));
        assert!(matches("**/*.go", "a/b/main.go"));
        assert!(matches("docs/**/*.md", "docs/x.md"));
        assert!(matches("refs/tags/v**", "refs/tags/v1.2.3"));
        assert!(matches("{main,dev}", "dev"));
        assert!(matches("linux/{amd64,arm*}", "linux/arm64"));
        assert!(matches("v[0-9].?", "v1.x"));
        assert!(!matches("v[!0-9]", "v1"));
        assert!(matches("a\\*", "a*"));
        assert!(!matches("*", "a/b"));
        assert!(matches("*", ""));
        assert!(!matches("[", "["));
    }

    #[test]
    fn no_exponential_backtracking() {
        let text = "a".repeat(5000);
        let start = std::time::Instant::now();
        assert!(!matches("*a*a*a*a*a*a*a*a*b", &text));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
