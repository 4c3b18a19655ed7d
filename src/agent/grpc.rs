//! A small unary gRPC client on hyper's HTTP/2 client: length-prefixed protobuf messages,
//! `grpc-status`/`grpc-message` from headers or trailers, metadata headers and deadlines.
//! Plaintext (h2c, prior knowledge) or TLS (see `tls.rs`).
//!
//! Knows gRPC framing and status codes, not Woodpecker: no method names, no tokens. Woodpecker's
//! protocol is unary only, so there are no streams, no compression and no interceptors here.

use std::fmt;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// gRPC status codes (`google.rpc.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    pub fn from_i32(n: i32) -> Code {
        use Code::*;
        const ALL: [Code; 17] = [
            Ok,
            Cancelled,
            Unknown,
            InvalidArgument,
            DeadlineExceeded,
            NotFound,
            AlreadyExists,
            PermissionDenied,
            ResourceExhausted,
            FailedPrecondition,
            Aborted,
            OutOfRange,
            Unimplemented,
            Internal,
            Unavailable,
            DataLoss,
            Unauthenticated,
        ];
        ALL.get(n as usize).copied().unwrap_or(Unknown)
    }

    /// The upper-case name gRPC uses in logs (`UNAVAILABLE`).
    pub fn name(self) -> &'static str {
        use Code::*;
        match self {
            Ok => "OK",
            Cancelled => "CANCELLED",
            Unknown => "UNKNOWN",
            InvalidArgument => "INVALID_ARGUMENT",
            DeadlineExceeded => "DEADLINE_EXCEEDED",
            NotFound => "NOT_FOUND",
            AlreadyExists => "ALREADY_EXISTS",
            PermissionDenied => "PERMISSION_DENIED",
            ResourceExhausted => "RESOURCE_EXHAUSTED",
            FailedPrecondition => "FAILED_PRECONDITION",
            Aborted => "ABORTED",
            OutOfRange => "OUT_OF_RANGE",
            Unimplemented => "UNIMPLEMENTED",
            Internal => "INTERNAL",
            Unavailable => "UNAVAILABLE",
            DataLoss => "DATA_LOSS",
            Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The codes Woodpecker's Go agent retries (`agent/rpc/client_grpc.go`).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::DataLoss | Code::Unauthenticated
        )
    }

    /// The gRPC-over-HTTP/2 mapping for a response without `grpc-status`.
    fn from_http(status: u16) -> Code {
        match status {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502..=504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }
}

/// The outcome of a failed call: a code and the server's (or transport's) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for Status {}

/// The largest response we accept (gRPC's default limit).
const MAX_MESSAGE: usize = 4 << 20;

/// How the channel reaches the server.
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    /// `host:port`.
    pub address: String,
    /// `Some` for TLS.
    pub tls: Option<rustls::ClientConfig>,
    /// HTTP/2 PING interval; `None` sends no pings (the server punishes pings more often than
    /// its `WOODPECKER_KEEPALIVE_MIN_TIME`, 5 min by default).
    pub keepalive_time: Option<Duration>,
    pub keepalive_timeout: Duration,
}

/// One HTTP/2 connection pool to a gRPC server. Reconnects on the next call after a failure.
#[derive(Clone)]
pub struct Channel {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
}

impl Channel {
    pub fn new(opts: ChannelOptions) -> Channel {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let (scheme, tls) = match opts.tls {
            Some(tls) => ("https", tls),
            // Never used for http:// URIs; https_or_http needs a config anyway.
            None => (
                "http",
                super::tls::client_config(false, None).expect("empty root store builds"),
            ),
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http2()
            .wrap_connector(http);
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .http2_only(true)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new());
        if let Some(every) = opts.keepalive_time {
            builder
                .http2_keep_alive_interval(every)
                .http2_keep_alive_timeout(opts.keepalive_timeout)
                .http2_keep_alive_while_idle(true);
        }
        Channel {
            client: builder.build(connector),
            base: format!("{scheme}://{}", opts.address),
        }
    }

    /// One unary call. `metadata` keys must be lower-case ASCII. `deadline` bounds the whole call
    /// and is sent as `grpc-timeout`.
    pub async fn unary<Req, Resp>(
        &self,
        path: &str,
        req: &Req,
        metadata: &[(&'static str, &str)],
        deadline: Option<Duration>,
    ) -> Result<Resp, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let call = self.call_raw(path, encode_frame(req), metadata, deadline);
        let body = match deadline {
            Some(d) => tokio::time::timeout(d, call)
                .await
                .map_err(|_| Status::new(Code::DeadlineExceeded, format!("{path}: deadline of {d:?} exceeded")))??,
            None => call.await?,
        };
        let msg = decode_frame(body).map_err(|m| Status::new(Code::Internal, format!("{path}: {m}")))?;
        Resp::decode(msg).map_err(|e| Status::new(Code::Internal, format!("{path}: decode response: {e}")))
    }

    async fn call_raw(
        &self,
        path: &str,
        body: Bytes,
        metadata: &[(&'static str, &str)],
        deadline: Option<Duration>,
    ) -> Result<Bytes, Status> {
        let uri: Uri = format!("{}{path}", self.base)
            .parse()
            .map_err(|e| Status::new(Code::InvalidArgument, format!("bad server address {}: {e}", self.base)))?;
        let mut req = Request::post(uri)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header(
                "user-agent",
                concat!("woodpecker-k8s-agent/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(d) = deadline {
            req = req.header("grpc-timeout", format!("{}m", d.as_millis().max(1)));
        }
        for (k, v) in metadata {
            let mut value = HeaderValue::from_str(v).map_err(|_| {
                Status::new(
                    Code::InvalidArgument,
                    format!("metadata {k} is not a valid header value"),
                )
            })?;
            if *k == "token" {
                value.set_sensitive(true);
            }
            req = req.header(*k, value);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Status::new(Code::Internal, format!("build request: {e}")))?;
        let resp = self.client.request(req).await.map_err(|e| transport_status(path, &e))?;
        let (parts, body) = resp.into_parts();
        // A trailers-only response carries the status in the headers.
        if let Some(status) = status_from(&parts.headers) {
            return Err(status);
        }
        if parts.status != http::StatusCode::OK {
            let code = Code::from_http(parts.status.as_u16());
            return Err(Status::new(code, format!("{path}: HTTP status {}", parts.status)));
        }
        let collected = body.collect().await.map_err(|e| transport_status(path, &e))?;
        let trailers = collected.trailers().cloned();
        let data = collected.to_bytes();
        match trailers.as_ref().and_then(status_from) {
            Some(status) => Err(status),
            None if trailers.as_ref().is_some_and(|t| t.contains_key("grpc-status")) => Ok(data),
            None => Err(Status::new(
                Code::Internal,
                format!("{path}: response without grpc-status"),
            )),
        }
    }
}

/// `Some` for a non-OK `grpc-status`.
fn status_from(headers: &http::HeaderMap) -> Option<Status> {
    let code = headers.get("grpc-status")?.to_str().ok()?.trim().parse::<i32>().ok()?;
    if code == 0 {
        return None;
    }
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Some(Status::new(Code::from_i32(code), message))
}

/// A transport failure (refused, reset, TLS) reads as UNAVAILABLE, as grpc-go reports it.
fn transport_status(path: &str, err: &(dyn std::error::Error + 'static)) -> Status {
    Status::new(
        Code::Unavailable,
        format!("{path}: {}", crate::error_chain::one_line(err)),
    )
}

/// The gRPC message frame: flag byte 0 (uncompressed), big-endian u32 length, the message.
pub fn encode_frame(msg: &impl prost::Message) -> Bytes {
    let len = msg.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(len as u32);
    msg.encode(&mut buf).expect("BytesMut grows");
    buf.freeze()
}

/// The single message of a unary response.
pub fn decode_frame(mut body: Bytes) -> Result<Bytes, String> {
    if body.len() < 5 {
        return Err(format!("response body of {} bytes has no message frame", body.len()));
    }
    let compressed = body.get_u8();
    let len = body.get_u32() as usize;
    if compressed != 0 {
        return Err("compressed response, but no compression was offered".into());
    }
    if len > MAX_MESSAGE {
        return Err(format!(
            "response message of {len} bytes exceeds the {MAX_MESSAGE} byte limit"
        ));
    }
    if body.len() < len {
        return Err(format!("response message truncated: {} of {len} bytes", body.len()));
    }
    Ok(body.split_to(len))
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2 spec).
fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && i + 2 < raw.len()
            && let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&raw[i + 1..i + 3]), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::proto;
    use prost::Message;

    #[test]
    fn frame_round_trip() {
        let msg = proto::WaitResponse { canceled: true };
        let frame = encode_frame(&msg);
        assert_eq!(&frame[..5], &[0, 0, 0, 0, 2]);
        let back = proto::WaitResponse::decode(decode_frame(frame).unwrap()).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn bad_frames_are_errors() {
        assert!(
            decode_frame(Bytes::from_static(&[0, 0]))
                .unwrap_err()
                .contains("no message frame")
        );
        assert!(
            decode_frame(Bytes::from_static(&[0, 0, 0, 0, 9, 1]))
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            decode_frame(Bytes::from_static(&[1, 0, 0, 0, 0]))
                .unwrap_err()
                .contains("compressed")
        );
    }

    #[test]
    fn status_from_headers() {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static("16"));
        h.insert("grpc-message", HeaderValue::from_static("token%20expired%"));
        let s = status_from(&h).unwrap();
        assert_eq!(s.code, Code::Unauthenticated);
        assert_eq!(s.message, "token expired%");
        h.insert("grpc-status", HeaderValue::from_static("0"));
        assert!(status_from(&h).is_none());
    }

    #[test]
    fn retryable_codes_match_the_go_agent() {
        let retry: Vec<_> = (0..17).map(Code::from_i32).filter(|c| c.is_retryable()).collect();
        assert_eq!(
            retry,
            [
                Code::DeadlineExceeded,
                Code::Aborted,
                Code::Unavailable,
                Code::DataLoss,
                Code::Unauthenticated
            ]
        );
        assert_eq!(Code::from_i32(99), Code::Unknown);
    }
}
