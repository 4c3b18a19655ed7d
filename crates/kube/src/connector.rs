//! TCP connections for the transport: direct, or tunnelled through an HTTP CONNECT proxy
//! (`proxy-url`), with a connect timeout, TCP_NODELAY and TCP keepalive. TLS is layered on top
//! by hyper-rustls, or for log streams by `h1`; this file knows nothing of TLS or of Kubernetes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::BoxError;

/// An HTTP proxy reached with CONNECT.
#[derive(Clone)]
pub struct Proxy {
    host: String,
    port: u16,
    /// `Proxy-Authorization` value from the URL's userinfo, if any.
    authorization: Option<String>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proxy({}:{})", self.host, self.port)
    }
}

impl Proxy {
    /// Accepts `http://[user:pass@]host[:port]`; other schemes are refused with a message.
    pub fn from_uri(uri: &Uri) -> Result<Proxy, String> {
        match uri.scheme_str() {
            Some("http") | None => {}
            // The URL may carry a password: no part of it is quoted.
            Some(_) => return Err("proxy-url scheme is not supported (only http:// CONNECT proxies)".into()),
        }
        let authority = uri.authority().ok_or("proxy-url has no host")?;
        let (userinfo, _) = match authority.as_str().rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority.as_str()),
        };
        let authorization = userinfo.map(|u| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(u.as_bytes())
            )
        });
        Ok(Proxy {
            host: strip_brackets(authority.host()).to_string(),
            port: authority.port_u16().unwrap_or(80),
            authorization,
        })
    }
}

/// A `tower_service::Service<Uri>` giving hyper-rustls a plain TCP stream to wrap.
#[derive(Clone, Debug)]
pub struct Connector {
    pub proxy: Option<Proxy>,
    pub connect_timeout: Duration,
    /// Connections attempted so far: a request during which this did not move went out on a
    /// pooled (reused) connection.
    pub connects: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

fn strip_brackets(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

fn target(uri: &Uri) -> Result<(String, u16), BoxError> {
    let host = uri.host().ok_or("the server URL has no host")?;
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("http") { 80 } else { 443 });
    Ok((strip_brackets(host).to_string(), port))
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(TokioIo::new(this.connect(&dst).await?)) })
    }
}

impl Connector {
    /// A TCP stream to `dst`'s host and port, through the proxy if there is one.
    pub async fn connect(&self, dst: &Uri) -> Result<TcpStream, BoxError> {
        self.connects.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (host, port) = target(dst)?;
        let connect = async {
            match &self.proxy {
                None => tcp(&host, port).await,
                Some(proxy) => {
                    let mut stream = tcp(&proxy.host, proxy.port).await?;
                    tunnel(&mut stream, &host, port, proxy.authorization.as_deref()).await?;
                    Ok(stream)
                }
            }
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(stream) => stream,
            Err(_) => Err(format!("connecting to {host}:{port} timed out after {:?}", self.connect_timeout).into()),
        }
    }
}

async fn tcp(host: &str, port: u16) -> Result<TcpStream, BoxError> {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    stream.set_nodelay(true)?;
    keepalive(&stream);
    Ok(stream)
}

/// TCP keepalive after 30 s idle, probes every 30 s, like client-go's dialer: on HTTP/1.1 a
/// silently dead connection is otherwise noticed only by our stream idle limits. Failures are
/// harmless (the connection works without keepalive), so they are ignored.
fn keepalive(stream: &TcpStream) {
    let every = std::time::Duration::from_secs(30);
    let params = socket2::TcpKeepalive::new().with_time(every).with_interval(every);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&params);
}

/// Sends `CONNECT host:port` and reads the proxy's reply head; anything but 2xx is an error.
async fn tunnel(stream: &mut TcpStream, host: &str, port: u16, auth: Option<&str>) -> Result<(), BoxError> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = auth {
        req.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await?;
    // Read byte-wise up to the blank line: the TLS handshake bytes that follow must stay unread.
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            return Err("the proxy's CONNECT reply head is over 8 KiB".into());
        }
        let b = stream
            .read_u8()
            .await
            .map_err(|e| format!("reading the proxy's CONNECT reply: {e}"))?;
        head.push(b);
    }
    let line = String::from_utf8_lossy(&head);
    let status_line = line.lines().next().unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or_default();
    if code.starts_with('2') {
        Ok(())
    } else {
        Err(format!("the proxy refused CONNECT {authority}: {status_line}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        let p = Proxy::from_uri(&"http://user:pw@proxy.local:3128".parse().unwrap()).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.local", 3128));
        assert_eq!(p.authorization.as_deref(), Some("Basic dXNlcjpwdw=="));
        assert!(!format!("{p:?}").contains("dXNl"));
        assert_eq!(Proxy::from_uri(&"http://[::1]".parse().unwrap()).unwrap().port, 80);
        let err = Proxy::from_uri(&"socks5://h:1".parse().unwrap()).unwrap_err();
        assert_eq!(err, "proxy-url scheme is not supported (only http:// CONNECT proxies)");
    }

    #[test]
    fn targets_default_ports_and_unbracket_ipv6() {
        assert_eq!(
            target(&"https://[fd00::1]/".parse().unwrap()).unwrap(),
            ("fd00::1".into(), 443)
        );
        assert_eq!(
            target(&"http://127.0.0.1:8080/".parse().unwrap()).unwrap(),
            ("127.0.0.1".into(), 8080)
        );
    }

    #[tokio::test]
    async fn tunnels_through_a_connect_proxy() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\nhello")
                .await
                .unwrap();
            head
        });
        let mut c = Connector {
            proxy: Some(Proxy::from_uri(&format!("http://a:b@{addr}").parse().unwrap()).unwrap()),
            connect_timeout: Duration::from_secs(5),
            connects: Default::default(),
        };
        let io = tower_service::Service::call(&mut c, "https://10.9.8.7:6443".parse().unwrap())
            .await
            .unwrap();
        let mut stream = io.into_inner();
        // Small writes go out at once (a delayed one waits for the peer's delayed ACK, ~40 ms).
        assert!(stream.nodelay().unwrap(), "Nagle's algorithm is on");
        let mut rest = [0u8; 5];
        stream.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"hello", "bytes after the reply head belong to the tunnel");
        let head = proxy.await.unwrap();
        assert!(head.starts_with("CONNECT 10.9.8.7:6443 HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("Proxy-Authorization: Basic YTpi\r\n"), "{head}");
    }
}
