//! HTTP plumbing shared by the handlers: the response body (whole or streamed through a
//! channel, which can also abort the connection), JSON/Status replies and query parsing.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use hyper::body::{Body, Frame};
use serde_json::Value;
use tokio::sync::mpsc;

use super::status::ApiError;

/// A stream cut on purpose (fault injection) or by shutdown: hyper drops the connection
/// without the final chunk, so the client sees an unexpected EOF.
#[derive(Debug)]
pub struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stream aborted by the simulated cluster")
    }
}
impl std::error::Error for Aborted {}

/// What a streaming handler sends: data, or an abort.
pub type Chunk = Result<Bytes, Aborted>;

pub enum SimBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Chunk>),
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        match self.get_mut() {
            SimBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            SimBody::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, SimBody::Full(None))
    }
}

pub type Resp = Response<SimBody>;

pub fn bytes(code: u16, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(SimBody::Full(Some(body.into())));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

pub fn json(code: u16, v: &Value) -> Resp {
    bytes(code, "application/json", serde_json::to_vec(v).unwrap_or_default())
}

pub fn error(e: &ApiError) -> Resp {
    let mut r = json(e.code, &e.status_json());
    if let Some(secs) = e.retry_after {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// A streamed 200 response and the sender that feeds it (bounded: a slow reader slows us).
pub fn stream(content_type: &str) -> (mpsc::Sender<Chunk>, Resp) {
    let (tx, rx) = mpsc::channel(64);
    let mut r = Response::new(SimBody::Stream(rx));
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    (tx, r)
}

fn unhex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes `%XX` and `+` in a query component.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (unhex(b[i + 1]), unhex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=1&b=x%3Dy` -> `[("a","1"),("b","x=y")]`.
pub fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// Parsed query parameters with typed getters.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        Query(query_pairs(q.unwrap_or("")))
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1" | "True"))
    }
    pub fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {k}: {v:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        let q = Query::parse(Some("fieldSelector=metadata.name%3Dp1&watch=1&l=a+b&bad=%zz"));
        assert_eq!(q.get("fieldSelector"), Some("metadata.name=p1"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("l"), Some("a b"));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(percent_decode("%4"), "%4");
    }
}
