//! The request log: every request the sim answered (method, path, query, status, watch), in
//! order, for tests that assert what a client actually sent.

use std::sync::Mutex;

/// One answered request.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string (may be empty).
    pub query: String,
    /// The HTTP status sent (0 when the connection was reset instead).
    pub status: u16,
    pub watch: bool,
    /// Who it authenticated as (`sim` for the token, a certificate's CN, `system:anonymous`);
    /// empty when authentication failed.
    pub user: String,
}

impl RecordedRequest {
    /// The value of one query parameter, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        super::wire::query_pairs(&self.query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

#[derive(Debug, Default)]
pub struct Recorder(Mutex<Vec<RecordedRequest>>);

impl Recorder {
    pub fn push(&self, r: RecordedRequest) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(r);
    }
    pub fn all(&self) -> Vec<RecordedRequest> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
