//! Request parameters (list, watch, delete, logs) and how they become a query string or a
//! `DeleteOptions` body. Pure: no I/O, no knowledge of which object is addressed.

use serde::Serialize;

/// Builds a URL query string, percent-encoding keys and values (RFC 3986 unreserved kept).
#[derive(Debug, Default, Clone)]
pub struct Query(String);

impl Query {
    pub fn new() -> Self {
        Query(String::new())
    }

    pub fn push(&mut self, key: &str, value: &str) -> &mut Self {
        self.0.push(if self.0.is_empty() { '?' } else { '&' });
        encode_into(&mut self.0, key);
        self.0.push('=');
        encode_into(&mut self.0, value);
        self
    }

    pub fn push_opt(&mut self, key: &str, value: Option<impl ToString>) -> &mut Self {
        if let Some(v) = value {
            self.push(key, &v.to_string());
        }
        self
    }

    /// `?a=b&c=d`, or empty.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Percent-encodes everything except RFC 3986 unreserved characters. Used for query values
/// and for object names in paths.
pub fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    encode_into(&mut out, s);
    out
}

/// Filters and paging for a LIST.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// e.g. `app=x,step in (a,b)`.
    pub label_selector: Option<String>,
    /// e.g. `metadata.name=pod-1` or `involvedObject.name=pod-1`.
    pub field_selector: Option<String>,
    pub limit: Option<u32>,
    pub continue_token: Option<String>,
    /// `0` accepts any cached copy; unset reads the most recent state.
    pub resource_version: Option<String>,
}

impl ListParams {
    pub fn labels(selector: impl Into<String>) -> Self {
        ListParams {
            label_selector: Some(selector.into()),
            ..Default::default()
        }
    }

    pub fn fields(selector: impl Into<String>) -> Self {
        ListParams {
            field_selector: Some(selector.into()),
            ..Default::default()
        }
    }

    pub fn query(&self) -> Query {
        let mut q = Query::new();
        q.push_opt("labelSelector", self.label_selector.as_deref());
        q.push_opt("fieldSelector", self.field_selector.as_deref());
        q.push_opt("limit", self.limit);
        q.push_opt("continue", self.continue_token.as_deref());
        q.push_opt("resourceVersion", self.resource_version.as_deref());
        q
    }
}

/// Filters and lifetime of a WATCH.
#[derive(Debug, Clone)]
pub struct WatchParams {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    /// The server ends the watch cleanly after this long; the client then resumes. kube-rs
    /// uses 290 s (and rejects 295 and more); client-go a random 5-10 min.
    pub timeout_seconds: u32,
    pub allow_bookmarks: bool,
}

impl Default for WatchParams {
    fn default() -> Self {
        WatchParams {
            label_selector: None,
            field_selector: None,
            timeout_seconds: 290,
            allow_bookmarks: true,
        }
    }
}

impl WatchParams {
    pub fn labels(selector: impl Into<String>) -> Self {
        WatchParams {
            label_selector: Some(selector.into()),
            ..Default::default()
        }
    }

    pub fn fields(selector: impl Into<String>) -> Self {
        WatchParams {
            field_selector: Some(selector.into()),
            ..Default::default()
        }
    }

    /// The LIST that starts a list-then-watch with the same filters.
    pub fn to_list(&self) -> ListParams {
        ListParams {
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
            ..Default::default()
        }
    }

    /// An empty `resource_version` starts at the most recent state (synthetic ADDED events).
    pub fn query(&self, resource_version: &str) -> Query {
        let mut q = Query::new();
        q.push("watch", "1");
        q.push_opt("labelSelector", self.label_selector.as_deref());
        q.push_opt("fieldSelector", self.field_selector.as_deref());
        q.push("timeoutSeconds", &self.timeout_seconds.to_string());
        if self.allow_bookmarks {
            q.push("allowWatchBookmarks", "true");
        }
        if !resource_version.is_empty() {
            q.push("resourceVersion", resource_version);
        }
        q
    }
}

/// How a DELETE behaves; sent as a `DeleteOptions` body.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<i64>,
    /// `Orphan`, `Background` or `Foreground`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation_policy: Option<String>,
    /// Delete only the object we created: a same-named successor answers 409 Conflict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preconditions: Option<Preconditions>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

impl DeleteParams {
    /// Remove the object now (`gracePeriodSeconds=0`, background propagation).
    pub fn immediate() -> Self {
        DeleteParams {
            grace_period_seconds: Some(0),
            propagation_policy: Some("Background".into()),
            preconditions: None,
        }
    }

    pub fn body(&self) -> Vec<u8> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            api_version: &'static str,
            kind: &'static str,
            #[serde(flatten)]
            params: &'a DeleteParams,
        }
        let body = Body {
            api_version: "v1",
            kind: "DeleteOptions",
            params: self,
        };
        serde_json::to_vec(&body).expect("DeleteOptions serializes")
    }
}

/// Parameters of `GET .../pods/{name}/log`.
#[derive(Debug, Clone, Default)]
pub struct LogParams {
    /// Required when the pod has more than one container.
    pub container: Option<String>,
    pub follow: bool,
    /// Prefix every line with its RFC 3339 nanosecond timestamp and a space.
    pub timestamps: bool,
    /// RFC 3339; the apiserver cuts it to whole seconds and the kubelet keeps lines at or
    /// after it.
    pub since_time: Option<String>,
    pub since_seconds: Option<i64>,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
    /// The previous terminated instance of the container.
    pub previous: bool,
}

impl LogParams {
    pub fn query(&self) -> Query {
        let mut q = Query::new();
        q.push_opt("container", self.container.as_deref());
        if self.follow {
            q.push("follow", "true");
        }
        if self.timestamps {
            q.push("timestamps", "true");
        }
        q.push_opt("sinceTime", self.since_time.as_deref());
        q.push_opt("sinceSeconds", self.since_seconds);
        q.push_opt("tailLines", self.tail_lines);
        q.push_opt("limitBytes", self.limit_bytes);
        if self.previous {
            q.push("previous", "true");
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_percent_encoded() {
        let q = ListParams {
            label_selector: Some("app=x,step in (a,b),!foo".into()),
            field_selector: Some("metadata.name=p-1".into()),
            limit: Some(500),
            ..Default::default()
        }
        .query();
        assert_eq!(
            q.as_str(),
            "?labelSelector=app%3Dx%2Cstep%20in%20%28a%2Cb%29%2C%21foo&fieldSelector=metadata.name%3Dp-1&limit=500"
        );
        assert_eq!(ListParams::default().query().as_str(), "");
    }

    #[test]
    fn watch_query_carries_rv_timeout_and_bookmarks() {
        let wp = WatchParams::fields("metadata.name=a");
        assert_eq!(
            wp.query("123").as_str(),
            "?watch=1&fieldSelector=metadata.name%3Da&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=123"
        );
        assert!(!wp.query("").as_str().contains("resourceVersion"));
        assert_eq!(wp.to_list().field_selector.as_deref(), Some("metadata.name=a"));
    }

    #[test]
    fn log_query() {
        let lp = LogParams {
            container: Some("step".into()),
            follow: true,
            timestamps: true,
            since_time: Some("2024-01-02T03:04:05Z".into()),
            ..Default::default()
        };
        assert_eq!(
            lp.query().as_str(),
            "?container=step&follow=true&timestamps=true&sinceTime=2024-01-02T03%3A04%3A05Z"
        );
    }

    #[test]
    fn delete_body_is_a_delete_options_object() {
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some("u-1".into()),
                resource_version: None,
            }),
            ..DeleteParams::immediate()
        };
        let v: serde_json::Value = serde_json::from_slice(&dp.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"apiVersion":"v1","kind":"DeleteOptions","gracePeriodSeconds":0,
                "propagationPolicy":"Background","preconditions":{"uid":"u-1"}})
        );
    }
}
