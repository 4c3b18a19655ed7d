//! Impersonation, as a kubeconfig user asks for it (`as`, `as-uid`, `as-groups`,
//! `as-user-extra`): kubectl sends every request as that identity, so we do too. Without it a
//! kubeconfig meant to act as a narrow service account would silently run with the caller's own,
//! wider rights.
//!
//! The headers are client-go's: `Impersonate-User`, `Impersonate-Uid`, one `Impersonate-Group`
//! per group, and one `Impersonate-Extra-<key>` per value, the key escaped (`%XX`) wherever a
//! byte is not allowed in a header name, and `%` itself.

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue};

/// Who the requests act as; empty means nobody else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impersonation {
    pub user: Option<String>,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Impersonation {
    pub fn is_empty(&self) -> bool {
        self.user.is_none() && self.uid.is_none() && self.groups.is_empty() && self.extra.is_empty()
    }

    /// The request headers, or which field cannot be sent as one.
    pub fn headers(&self) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
        let value = |field: &str, v: &str| {
            HeaderValue::from_str(v).map_err(|_| format!("`{field}` holds characters an HTTP header cannot carry"))
        };
        let mut out = Vec::new();
        if let Some(user) = &self.user {
            out.push((HeaderName::from_static("impersonate-user"), value("as", user)?));
        }
        if let Some(uid) = &self.uid {
            out.push((HeaderName::from_static("impersonate-uid"), value("as-uid", uid)?));
        }
        for group in &self.groups {
            out.push((HeaderName::from_static("impersonate-group"), value("as-groups", group)?));
        }
        for (key, values) in &self.extra {
            let name = HeaderName::from_bytes(format!("impersonate-extra-{}", escape_key(key)).as_bytes())
                .map_err(|_| format!("`as-user-extra` key `{key}` cannot be a header name"))?;
            for v in values {
                out.push((name.clone(), value("as-user-extra", v)?));
            }
        }
        Ok(out)
    }
}

/// A header-name-safe key: RFC 7230 token bytes stay, everything else and `%` become `%XX`.
fn escape_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        let token = b.is_ascii_alphanumeric() || b"!#$&'*+-.^_`|~".contains(&b);
        if token {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_client_go() {
        let imp = Impersonation {
            user: Some("system:serviceaccount:ci:woodpecker".into()),
            uid: Some("06f6ce97".into()),
            groups: vec!["developers".into(), "admins".into()],
            extra: BTreeMap::from([
                ("acme.com/project".into(), vec!["some-project".into()]),
                ("scopes".into(), vec!["openid".into(), "profile".into()]),
            ]),
        };
        let got: Vec<(String, String)> = imp
            .headers()
            .unwrap()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let want = [
            ("impersonate-user", "system:serviceaccount:ci:woodpecker"),
            ("impersonate-uid", "06f6ce97"),
            ("impersonate-group", "developers"),
            ("impersonate-group", "admins"),
            ("impersonate-extra-acme.com%2fproject", "some-project"),
            ("impersonate-extra-scopes", "openid"),
            ("impersonate-extra-scopes", "profile"),
        ];
        let want: Vec<(String, String)> = want.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        assert_eq!(got, want);
        assert!(!imp.is_empty());
        assert!(Impersonation::default().is_empty());
        assert_eq!(Impersonation::default().headers().unwrap(), vec![]);
    }

    #[test]
    fn keys_escape_percent_and_non_token_bytes() {
        assert_eq!(escape_key("a%b c/é"), "a%25b%20c%2F%C3%A9");
        assert_eq!(escape_key("plain-key_1.x"), "plain-key_1.x");
    }

    #[test]
    fn a_value_no_header_can_carry_names_its_field() {
        let imp = Impersonation {
            groups: vec!["bad\nline".into()],
            ..Default::default()
        };
        assert_eq!(
            imp.headers().unwrap_err(),
            "`as-groups` holds characters an HTTP header cannot carry"
        );
    }
}
