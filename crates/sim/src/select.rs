//! Label and field selectors as the apiserver parses them: labels `k=v`, `k==v`, `k!=v`, `k`,
//! `!k`, `k in (a,b)`, `k notin (a,b)`; fields `f=v`, `f==v`, `f!=v` over the fields each kind
//! supports (anything else is a 400 `field label not supported`). Pure.

use serde_json::Value;

use super::status::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed `labelSelector`; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<LabelReq>);

/// A parsed `fieldSelector`; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

fn set_values(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let bad = |part: &str| {
            ApiError::bad_request(format!("unable to parse requirement: invalid label selector: {part:?}"))
        };
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let req = if let Some(k) = part.strip_prefix('!') {
                LabelReq::NotExists(k.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                LabelReq::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                LabelReq::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                LabelReq::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once(" notin ") {
                LabelReq::NotIn(k.trim().into(), set_values(v).ok_or_else(|| bad(part))?)
            } else if let Some((k, v)) = part.split_once(" in ") {
                LabelReq::In(k.trim().into(), set_values(v).ok_or_else(|| bad(part))?)
            } else if part.contains(|c: char| c.is_whitespace() || "()<>".contains(c)) {
                return Err(bad(part));
            } else {
                LabelReq::Exists(part.to_string())
            };
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
        })
    }
}

/// The fields a kind accepts in a field selector (apiserver `GetAttrs`/field label conversion).
fn supported(plural: &str, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match plural {
        "pods" => matches!(
            field,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
        "events" => {
            field.starts_with("involvedObject.") || matches!(field, "reason" | "type" | "source" | "reportingComponent")
        }
        "secrets" => field == "type",
        "namespaces" => field == "status.phase",
        _ => false,
    }
}

/// The string value of a selectable field; missing fields read as "" (as the apiserver does).
fn field_value(obj: &Value, field: &str) -> String {
    let v = match field {
        "source" => &obj["source"]["component"],
        "spec.hostNetwork" => return obj["spec"]["hostNetwork"].as_bool().unwrap_or(false).to_string(),
        f => {
            let mut cur = obj;
            for seg in f.split('.') {
                cur = &cur[seg];
            }
            cur
        }
    };
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl FieldSelector {
    pub fn parse(plural: &str, s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let (f, eq, v) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let f = f.trim();
            if !supported(plural, f) {
                return Err(ApiError::bad_request(format!("field label not supported: {f}")));
            }
            reqs.push((f.to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(f, eq, v)| (field_value(obj, f) == *v) == *eq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let o = json!({"metadata": {"labels": {"app": "demo", "tier": "web"}}});
        for (sel, want) in [
            ("app=demo", true),
            ("app==demo,tier=web", true),
            ("app!=demo", false),
            ("app", true),
            ("!app", false),
            ("!gone", true),
            ("tier in (web, db)", true),
            ("tier notin (web)", false),
            ("", true),
        ] {
            assert_eq!(LabelSelector::parse(sel).unwrap().matches(&o), want, "{sel}");
        }
        assert!(LabelSelector::parse("a b").is_err());
    }

    #[test]
    fn field_selectors() {
        let p = json!({"metadata": {"name": "p1", "namespace": "d"}, "status": {"phase": "Running"}});
        assert!(
            FieldSelector::parse("pods", "metadata.name=p1,status.phase!=Failed")
                .unwrap()
                .matches(&p)
        );
        assert!(
            !FieldSelector::parse("pods", "status.phase=Succeeded")
                .unwrap()
                .matches(&p)
        );
        let e = FieldSelector::parse("pods", "foo=bar").unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (400, "field label not supported: foo"));
        let ev = json!({"involvedObject": {"name": "p1"}});
        assert!(
            FieldSelector::parse("events", "involvedObject.name=p1")
                .unwrap()
                .matches(&ev)
        );
    }
}
