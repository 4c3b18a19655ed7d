//! A streamed GET on a connection of its own, spoken without hyper: what container logs use.
//!
//! A busy log is the one place where a connection's buffers multiply (one connection per step,
//! dozens at once), and hyper's pooled client keeps per connection a read buffer, a write
//! buffer, a dispatch channel and, under it, rustls' deframer and queue of unread plaintext
//! (about 180 KB of heap per stream at full speed, README "Logs under load"). Here a
//! connection is the TCP stream, for TLS one record-sized buffer ([`tls`]), and each record's
//! plaintext in a buffer of its exact size (one copy out of rustls' own vector, as many copies
//! as through hyper), which the body hands out as slices with the framing cut out
//! ([`chunked`]): nothing is copied between the record and the log reader.
//!
//! Only what a log GET needs: one request without a body, the reply head, and the body framed
//! by `Transfer-Encoding: chunked`, `Content-Length` or the connection's end. Not pooled: the
//! connection is closed with the body.

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod chunked;
mod tls;

use chunked::Chunked;
use tls::TlsStream;

/// The most bytes of a reply head, and of its header fields.
const MAX_HEAD: usize = 64 << 10;
const MAX_HEADERS: usize = 100;
/// Room asked for each read of a plain (non-TLS) connection.
const PLAIN_READ: usize = 16 << 10;

/// One connection to the apiserver, plain or TLS.
pub struct Conn(Link);

enum Link {
    Plain { tcp: TcpStream, buf: BytesMut },
    Tls(Box<TlsStream>),
}

impl Conn {
    pub fn plain(tcp: TcpStream) -> Conn {
        Conn(Link::Plain {
            tcp,
            buf: BytesMut::new(),
        })
    }

    /// The TLS handshake over `tcp`.
    pub async fn tls(tcp: TcpStream, config: Arc<ClientConfig>, name: ServerName<'static>) -> io::Result<Conn> {
        Ok(Conn(Link::Tls(Box::new(TlsStream::connect(tcp, config, name).await?))))
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.0 {
            Link::Plain { tcp, .. } => tcp.write_all(data).await,
            Link::Tls(tls) => tls.write_all(data).await,
        }
    }

    /// The next bytes received, `None` at a clean end of the connection. Cancel safe.
    async fn read(&mut self) -> io::Result<Option<Bytes>> {
        match &mut self.0 {
            Link::Plain { tcp, buf } => {
                buf.reserve(PLAIN_READ);
                match tcp.read_buf(buf).await? {
                    0 => Ok(None),
                    _ => Ok(Some(buf.split().freeze())),
                }
            }
            Link::Tls(tls) => tls.read().await,
        }
    }
}

/// The request head for `request` (a GET without a body): its path and query, `Host` from
/// its URI, then its header fields as they are.
pub fn request_head<B>(request: &Request<B>) -> Vec<u8> {
    let uri = request.uri();
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let host = uri.host().unwrap_or_default();
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(format!("{} {target} HTTP/1.1\r\nHost: ", request.method()).as_bytes());
    head.extend_from_slice(host.as_bytes());
    if let Some(port) = uri.port_u16() {
        head.extend_from_slice(format!(":{port}").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    for (name, value) in request.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// A reply: its head, and its body still on the connection.
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
}

/// How the body's end is known.
#[derive(Debug)]
enum Framing {
    Chunked(Chunked),
    Length(u64),
    /// Until the connection ends.
    Close,
    Done,
}

/// A reply body, read as it arrives.
pub struct Body {
    conn: Conn,
    /// Received bytes not yet decoded.
    input: Bytes,
    framing: Framing,
}

/// Sends `head` on `conn` and reads the reply head (skipping informational replies).
pub async fn exchange(mut conn: Conn, head: &[u8]) -> io::Result<Response> {
    conn.write_all(head).await?;
    let mut buf = BytesMut::new();
    loop {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut reply = httparse::Response::new(&mut fields);
        let parsed = reply
            .parse(&buf)
            .map_err(|e| invalid(format!("a malformed reply head: {e}")))?;
        if let httparse::Status::Complete(len) = parsed {
            let code = reply.code.unwrap_or_default();
            let status = StatusCode::from_u16(code).map_err(|_| invalid(format!("reply status {code}")))?;
            let mut headers = HeaderMap::with_capacity(reply.headers.len());
            for field in reply.headers.iter() {
                let name = HeaderName::from_bytes(field.name.as_bytes())
                    .map_err(|_| invalid(format!("a reply header name {:?}", field.name)))?;
                let value = HeaderValue::from_bytes(field.value)
                    .map_err(|_| invalid(format!("the reply header {:?} has a bad value", field.name)))?;
                headers.append(name, value);
            }
            let rest = buf.split_off(len).freeze();
            if status.is_informational() {
                buf = BytesMut::from(rest);
                continue;
            }
            let framing = framing(status, &headers)?;
            return Ok(Response {
                status,
                headers,
                body: Body {
                    conn,
                    input: rest,
                    framing,
                },
            });
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid(format!("the reply head is over {} KiB", MAX_HEAD >> 10)));
        }
        let more = conn.read().await?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection before its reply head",
            )
        })?;
        buf.extend_from_slice(&more);
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// RFC 9112 section 6.3, for a reply to a GET: chunked if it is the last transfer coding, else
/// `Content-Length`, else until the connection closes.
fn framing(status: StatusCode, headers: &HeaderMap) -> io::Result<Framing> {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Done);
    }
    if let Some(coding) = headers.get_all(http::header::TRANSFER_ENCODING).iter().next_back() {
        let last = coding
            .to_str()
            .unwrap_or_default()
            .rsplit(',')
            .next()
            .unwrap_or_default();
        return Ok(if last.trim().eq_ignore_ascii_case("chunked") {
            Framing::Chunked(Chunked::default())
        } else {
            Framing::Close
        });
    }
    match headers.get(http::header::CONTENT_LENGTH) {
        None => Ok(Framing::Close),
        Some(value) => match value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(0) => Ok(Framing::Done),
            Some(n) => Ok(Framing::Length(n)),
            None => Err(invalid(format!("the reply's Content-Length {value:?} is not a number"))),
        },
    }
}

impl Body {
    /// The next piece of the body, `None` at its end. A connection that ends before the body
    /// does is an `UnexpectedEof` error. Cancel safe.
    pub async fn data(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            match &mut self.framing {
                Framing::Done => return Ok(None),
                Framing::Chunked(decoder) => {
                    if let Some(data) = decoder.next(&mut self.input).map_err(|e| invalid(e.into()))? {
                        return Ok(Some(data));
                    }
                    if decoder.is_done() {
                        self.framing = Framing::Done;
                        return Ok(None);
                    }
                }
                Framing::Length(left) if !self.input.is_empty() => {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(self.input.len());
                    let data = self.input.split_to(n);
                    *left -= n as u64;
                    if *left == 0 {
                        self.framing = Framing::Done;
                    }
                    return Ok(Some(data));
                }
                Framing::Close if !self.input.is_empty() => return Ok(Some(std::mem::take(&mut self.input))),
                Framing::Length(_) | Framing::Close => {}
            }
            match self.conn.read().await? {
                Some(more) => self.input = more,
                None if matches!(self.framing, Framing::Close) => self.framing = Framing::Done,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection before the reply body ended",
                    ));
                }
            }
        }
    }

    /// The whole body, or as much as was read when it passed `limit` bytes or failed.
    pub async fn collect(mut self, limit: usize) -> Bytes {
        let mut all = BytesMut::new();
        while all.len() <= limit {
            match self.data().await {
                Ok(Some(data)) => all.extend_from_slice(&data),
                _ => break,
            }
        }
        all.truncate(limit);
        all.freeze()
    }
}
