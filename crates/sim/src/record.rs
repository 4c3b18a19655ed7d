//! The request log: every request the sim answered (method, path, query, status, watch), in
//! order, for tests that assert what a client actually sent. And when each pod ended, for
//! latency measurements.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

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

/// When each pod's phase became final (Succeeded or Failed), by namespace and name: the
/// monotonic clock read just before the kubelet wrote that status, so a latency measured from
/// it is never too short. An entry goes when its pod is removed.
#[derive(Debug, Default)]
pub struct PodEnds(Mutex<HashMap<(String, String), Instant>>);

impl PodEnds {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn ended(&self, ns: &str, pod: &str, at: Instant) {
        self.lock().insert((ns.to_string(), pod.to_string()), at);
    }
    pub fn get(&self, ns: &str, pod: &str) -> Option<Instant> {
        self.lock().get(&(ns.to_string(), pod.to_string())).copied()
    }
    pub fn remove(&self, ns: &str, pod: &str) {
        self.lock().remove(&(ns.to_string(), pod.to_string()));
    }
}
