//! The typed error every client call returns. API errors carry the apiserver's `Status`
//! (reason, message, code) and are classified the way apimachinery does it: by `reason`
//! first, by HTTP code only when the reason is empty or unknown. Transport, timeout, decode
//! and setup errors are separate variants. Knows nothing of which caller made the request.

use std::fmt;
use std::time::Duration;

use super::types::Status;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The apiserver refused: a non-2xx reply or a watch `ERROR` event. `what` is the request
    /// (`GET /api/v1/namespaces/x/pods/y`).
    Api { what: String, status: Box<Status> },
    /// Connecting, the TLS handshake, sending, or reading the body failed.
    Transport { what: String, source: BoxError },
    /// The TLS handshake failed for a reason retrying cannot change: the server's certificate
    /// failed verification (unknown CA, wrong name, expired) or the server refused ours.
    /// Never retried. `ca` says which trust was used (a file path, "inline
    /// certificate-authority-data", the system bundle), never its bytes.
    Tls {
        what: String,
        reason: String,
        ca: String,
        source: BoxError,
    },
    /// No reply (or, on a stream, no bytes) within the limit.
    Timeout { what: String, after: Duration },
    /// A reply body was not the JSON we expected.
    Decode { what: String, source: DecodeError },
    /// A watch event was larger than the hard cap and was skipped.
    TooLarge { what: String, limit: usize },
    /// The configuration cannot be turned into a transport (bad PEM, unsupported proxy...).
    Setup { what: String, source: Option<BoxError> },
    /// Credentials could not be obtained (token file, exec plugin).
    Auth { source: BoxError },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The Status is data, not a source error: its message is the point.
            Error::Api { what, status } => {
                write!(f, "{what}: {} {}", status.code, reason_or_code(status))?;
                if !status.message.is_empty() {
                    write!(f, ": {}", status.message)?;
                }
                Ok(())
            }
            Error::Transport { what, .. } => write!(f, "{what}: transport error"),
            Error::Tls { what, reason, ca, .. } => {
                write!(
                    f,
                    "{what}: TLS handshake refused: {reason} (trusted CA: {ca}); not retried"
                )
            }
            Error::Timeout { what, after } => write!(f, "{what}: no reply within {after:?}"),
            Error::Decode { what, .. } => write!(f, "{what}: could not decode the reply"),
            Error::TooLarge { what, limit } => {
                write!(f, "{what}: an event larger than {limit} bytes was skipped")
            }
            Error::Setup { what, .. } => write!(f, "setting up the client: {what}"),
            Error::Auth { .. } => write!(f, "getting credentials for the apiserver"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Transport { source, .. } | Error::Tls { source, .. } | Error::Auth { source } => {
                Some(source.as_ref())
            }
            Error::Setup {
                source: Some(source), ..
            } => Some(source.as_ref()),
            Error::Decode { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A JSON decoder's error without the value it rejected: serde quotes it (`invalid type:
/// string "...", expected ...`), and a server payload may hold a Secret's data. Keeps the
/// field path, the kind found, the expected type and the place.
#[derive(Debug)]
pub struct DecodeError(String);

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> DecodeError {
        let place = (e.line() > 0).then(|| (e.line(), e.column()));
        DecodeError(crate::config::kubeconfig::redact::value_free(&e.to_string(), place))
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Reasons apimachinery knows; any other reason falls back to the HTTP code.
const KNOWN_REASONS: &[&str] = &[
    "AlreadyExists",
    "Conflict",
    "NotFound",
    "Invalid",
    "BadRequest",
    "Forbidden",
    "Unauthorized",
    "Gone",
    "Expired",
    "TooManyRequests",
    "Timeout",
    "ServerTimeout",
    "InternalError",
    "ServiceUnavailable",
    "MethodNotAllowed",
    "NotAcceptable",
    "RequestEntityTooLarge",
    "UnsupportedMediaType",
];

/// The reason, or the one apimachinery derives from the code when the reason is empty or
/// unknown (`reason_or_code` in kube-core, `ReasonForError` + code checks in apimachinery).
pub fn reason_or_code(status: &Status) -> &str {
    if KNOWN_REASONS.contains(&status.reason.as_str()) {
        return &status.reason;
    }
    match status.code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        c if c >= 500 => "InternalError",
        _ => "",
    }
}

/// A `Status` for a reply whose body was not one (a proxy's HTML page, an empty body), the
/// way client-go synthesizes it: a 409 to a POST means AlreadyExists, otherwise Conflict.
pub fn synthesize_status(code: u16, is_post: bool, body: &[u8]) -> Status {
    let mut status = Status {
        status: "Failure".into(),
        code,
        ..Default::default()
    };
    status.reason = if code == 409 && is_post {
        "AlreadyExists".into()
    } else {
        reason_or_code(&status).into()
    };
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
    status.message = text.trim().to_string();
    status
}

/// Parses an error body: a `Status` when it is one, a synthesized one otherwise.
pub fn status_from_body(code: u16, is_post: bool, body: &[u8]) -> Status {
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(default)]
        kind: String,
    }
    let is_status = matches!(serde_json::from_slice::<Kind>(body), Ok(k) if k.kind == "Status");
    match serde_json::from_slice::<Status>(body) {
        Ok(mut status) if is_status => {
            if status.code == 0 {
                status.code = code;
            }
            status
        }
        _ => synthesize_status(code, is_post, body),
    }
}

impl Error {
    /// The apiserver's `Status`, for API errors.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Api { status, .. } => Some(status),
            _ => None,
        }
    }

    fn reason(&self) -> &str {
        self.status().map(reason_or_code).unwrap_or("")
    }

    pub fn is_not_found(&self) -> bool {
        self.reason() == "NotFound"
    }
    pub fn is_already_exists(&self) -> bool {
        self.reason() == "AlreadyExists"
    }
    pub fn is_conflict(&self) -> bool {
        self.reason() == "Conflict"
    }
    /// `410`: `Gone` (old servers) and `Expired` alike mean "re-list".
    pub fn is_gone(&self) -> bool {
        matches!(self.reason(), "Gone" | "Expired") || self.status().is_some_and(|s| s.code == 410)
    }
    pub fn is_forbidden(&self) -> bool {
        self.reason() == "Forbidden"
    }
    pub fn is_unauthorized(&self) -> bool {
        self.reason() == "Unauthorized"
    }
    pub fn is_invalid(&self) -> bool {
        self.reason() == "Invalid"
    }
    pub fn is_bad_request(&self) -> bool {
        self.reason() == "BadRequest"
    }
    pub fn is_too_many_requests(&self) -> bool {
        self.reason() == "TooManyRequests"
    }
    /// A TLS failure that retrying cannot fix (see [`Error::Tls`]).
    pub fn is_tls(&self) -> bool {
        matches!(self, Error::Tls { .. })
    }
    /// Connection-level failures and timeouts, as opposed to a refusal by the apiserver.
    /// A final TLS failure is not one: see [`Error::is_tls`].
    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Transport { .. } | Error::Timeout { .. })
    }
    /// The apiserver's message, or empty.
    pub fn message(&self) -> &str {
        self.status().map(|s| s.message.as_str()).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply that does not decode is reported without the value: a Secret's data could be it.
    #[test]
    fn decode_errors_never_quote_the_payload() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Obj {
            data: std::collections::BTreeMap<String, u32>,
        }
        let e = serde_json::from_str::<Obj>(r#"{"data": {"password": "s3cr3t-payload"}}"#).unwrap_err();
        assert!(e.to_string().contains("s3cr3t-payload"), "serde quotes it: {e}");
        let err = Error::Decode {
            what: "GET /x".into(),
            source: e.into(),
        };
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(cause, "invalid type: a string, expected u32 at line 1 column 38");
    }

    fn api(code: u16, reason: &str) -> Error {
        Error::Api {
            what: "GET /x".into(),
            status: Box::new(Status {
                code,
                reason: reason.into(),
                message: "m".into(),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn reason_first_then_code() {
        assert!(api(404, "NotFound").is_not_found());
        assert!(api(404, "").is_not_found());
        assert!(api(409, "AlreadyExists").is_already_exists());
        assert!(!api(409, "AlreadyExists").is_conflict());
        assert!(api(409, "Conflict").is_conflict());
        assert!(api(409, "SomethingNew").is_conflict());
        assert!(api(410, "Expired").is_gone() && api(410, "Gone").is_gone() && api(410, "").is_gone());
        assert!(api(422, "Invalid").is_invalid());
        assert!(api(403, "Forbidden").is_forbidden());
        assert!(api(401, "").is_unauthorized());
        assert!(api(429, "TooManyRequests").is_too_many_requests());
        assert!(!api(500, "InternalError").is_not_found());
    }

    #[test]
    fn parses_a_status_body_and_keeps_the_message() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"a\" already exists","reason":"AlreadyExists","details":{"name":"a","kind":"pods"},"code":409}"#;
        let s = status_from_body(409, true, body);
        assert_eq!(s.reason, "AlreadyExists");
        assert_eq!(s.message, "pods \"a\" already exists");
        let e = Error::Api {
            what: "POST /api/v1/namespaces/n/pods".into(),
            status: Box::new(s),
        };
        assert_eq!(
            e.to_string(),
            "POST /api/v1/namespaces/n/pods: 409 AlreadyExists: pods \"a\" already exists"
        );
    }

    #[test]
    fn non_status_bodies_are_synthesized_like_client_go() {
        let s = status_from_body(409, true, b"<html>nope</html>");
        assert_eq!(
            (s.reason.as_str(), s.message.as_str()),
            ("AlreadyExists", "<html>nope</html>")
        );
        assert_eq!(status_from_body(409, false, b"").reason, "Conflict");
        assert_eq!(status_from_body(502, false, b"").reason, "InternalError");
        // A JSON body that is not a Status is not taken for one.
        assert_eq!(status_from_body(404, false, br#"{"message":"x"}"#).reason, "NotFound");
    }
}
