//! An error and its causes: one home for how every room prints them. An error's `Display`
//! names what failed and leaves the cause to `source()` (never both), so a message is only
//! complete with its chain.

use std::error::Error;

/// The error and each of its causes, outermost first.
pub fn causes<'a>(err: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(err), |&e| e.source())
}

/// The chain on one line, `what: why: root cause`. A cause whose text the line already ends
/// with is not repeated (errors that wrap a cause and print it too). Newlines become spaces.
pub fn one_line(err: &(dyn Error + 'static)) -> String {
    let mut out = String::new();
    for e in causes(err) {
        let text = e.to_string();
        if out.is_empty() {
            out = text;
        } else if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for E {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn joins_causes_once_each() {
        let e = E(
            "create pod wp-1",
            Some(Box::new(E("POST /pods: 409", Some(Box::new(E("exists\nagain", None)))))),
        );
        assert_eq!(one_line(&e), "create pod wp-1: POST /pods: 409: exists again");
        assert_eq!(causes(&e).count(), 3);
        // A wrapper that already prints its cause does not print it twice.
        let e = E("setup: boom", Some(Box::new(E("boom", None))));
        assert_eq!(one_line(&e), "setup: boom");
    }
}
