//! Finds the line a key path sits on in block-style YAML text, by indentation. The YAML parser
//! we use (yaml_serde) keeps no positions for values, and every error must point at a line, so
//! this reads the text a second time. Best effort: a key that came from an alias or a merge
//! (`<<: *x`), or lives in a flow collection, reports the line of its nearest located parent.
//! Pure.

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    no: usize,
    indent: usize,
    text: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let trimmed = raw.trim_start();
            let blank = trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---");
            (!blank).then(|| Line {
                no: i + 1,
                indent: raw.len() - trimmed.len(),
                text: trimmed,
            })
        })
        .collect()
}

/// The key written at the start of a line (`image: x`, `"a b": x`, `build:`), if any.
fn key_of(text: &str) -> Option<&str> {
    if let Some(quoted) = text.strip_prefix('"').or_else(|| text.strip_prefix('\'')) {
        let end = quoted.find(['"', '\''])?;
        return quoted[end + 1..].starts_with(':').then_some(&quoted[..end]);
    }
    let colon = text.find(": ").or_else(|| text.strip_suffix(':').map(str::len))?;
    Some(text[..colon].trim_end())
}

/// The 1-based line of `path` in `text`, or of its nearest located parent; 0 if none is found.
pub fn line_of(text: &str, path: &[Seg]) -> usize {
    let all = lines(text);
    let mut region: Vec<Line<'_>> = all;
    let mut best = 0;
    for seg in path {
        let Some(indent) = region.iter().map(|l| l.indent).min() else {
            break;
        };
        let (found, child) = match seg {
            Seg::Key(k) => {
                let Some(i) = region
                    .iter()
                    .position(|l| l.indent == indent && key_of(l.text) == Some(k.as_str()))
                else {
                    break;
                };
                (region[i].no, block_after(&region, i, indent, None))
            }
            Seg::Index(n) => {
                let items: Vec<usize> = region
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.indent == indent && (l.text == "-" || l.text.starts_with("- ")))
                    .map(|(i, _)| i)
                    .collect();
                let Some(&i) = items.get(*n) else { break };
                let first = region[i];
                let rest = first.text[1..].trim_start();
                let head = (!rest.is_empty()).then(|| Line {
                    no: first.no,
                    indent: first.indent + (first.text.len() - rest.len()),
                    text: rest,
                });
                (first.no, block_after(&region, i, indent, head))
            }
        };
        best = found;
        region = child;
    }
    best
}

/// The lines nested under `region[i]` (deeper than `indent`), optionally after a first line.
fn block_after<'a>(region: &[Line<'a>], i: usize, indent: usize, head: Option<Line<'a>>) -> Vec<Line<'a>> {
    let mut out: Vec<Line<'a>> = head.into_iter().collect();
    out.extend(region[i + 1..].iter().take_while(|l| l.indent > indent).copied());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
when:
  event: push
steps:
  build:
    image: golang   # comment
    commands:
      - go build
  test:
    image: golang
services:
  - name: db
    image: postgres
  -
    name: cache
    image: redis
";

    fn key(k: &str) -> Seg {
        Seg::Key(k.into())
    }

    #[test]
    fn finds_map_and_list_keys() {
        assert_eq!(line_of(DOC, &[key("steps"), key("build"), key("image")]), 5);
        assert_eq!(line_of(DOC, &[key("steps"), key("test"), key("image")]), 9);
        assert_eq!(
            line_of(DOC, &[key("steps"), key("build"), key("commands"), Seg::Index(0)]),
            7
        );
        assert_eq!(line_of(DOC, &[key("services"), Seg::Index(0), key("image")]), 12);
        assert_eq!(line_of(DOC, &[key("services"), Seg::Index(1), key("image")]), 15);
        assert_eq!(line_of(DOC, &[key("when"), key("event")]), 2);
    }

    #[test]
    fn falls_back_to_the_parent() {
        assert_eq!(line_of(DOC, &[key("steps"), key("test"), key("nope")]), 8);
        assert_eq!(line_of(DOC, &[key("nope")]), 0);
    }
}
