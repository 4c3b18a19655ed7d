//! The apiserver's error replies: `metav1.Status` bodies with the reason, code and details that
//! kubectl builds its messages from (plural resource in `details.kind` for 404/409, the Kind and
//! `causes` for 422). Knows nothing of HTTP plumbing.

use serde_json::{Value, json};

/// A failed request, rendered as a full `Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds for a `Retry-After` header (429/5xx faults).
    pub retry_after: Option<u32>,
}

/// One field-level problem in a 422.
#[derive(Debug, Clone)]
pub struct Cause {
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn not_found(plural: &str, name: &str) -> Self {
        let mut e = Self::new(404, "NotFound", format!("{plural} \"{name}\" not found"));
        e.details = Some(json!({"name": name, "kind": plural}));
        e
    }

    pub fn already_exists(plural: &str, name: &str) -> Self {
        let mut e = Self::new(409, "AlreadyExists", format!("{plural} \"{name}\" already exists"));
        e.details = Some(json!({"name": name, "kind": plural}));
        e
    }

    pub fn conflict(plural: &str, name: &str, why: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {plural} \"{name}\": {why}"),
        );
        e.details = Some(json!({"name": name, "kind": plural}));
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn path_not_found() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
    }

    /// 422 with kubectl's shape: `details.kind` is the Kind, `causes` carry field and message.
    pub fn invalid(kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: [{}]", list.join(", ")),
        );
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        e.details = Some(json!({"name": name, "kind": kind, "causes": causes}));
        e
    }

    pub fn status_json(&self) -> Value {
        let mut v = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        });
        let mut details = self.details.clone();
        if let Some(secs) = self.retry_after {
            let d = details.get_or_insert_with(|| json!({}));
            d["retryAfterSeconds"] = json!(secs);
        }
        if let Some(d) = details {
            v["details"] = d;
        }
        v
    }
}

impl Cause {
    pub fn invalid(field: impl Into<String>, value: &str, why: &str) -> Self {
        Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: \"{value}\": {why}"),
        }
    }
    pub fn required(field: impl Into<String>) -> Self {
        Cause {
            reason: "FieldValueRequired",
            field: field.into(),
            message: "Required value".into(),
        }
    }
}
