//! The HTTP(S) front: accepts connections on 127.0.0.1 (TLS via tokio-rustls with ALPN h2 and
//! http/1.1, or plain HTTP), authenticates each request (bearer token, or a client certificate
//! signed by the sim's CA; anonymous only over plain HTTP and for /version and health checks),
//! applies armed faults, records the request and hands it to `api`.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::Shared;
use super::faults::FaultReply;
use super::record::RecordedRequest;
use super::status::ApiError;
use super::wire::{self, Aborted, Query, Resp};
use super::{api, certs};

/// Largest request body accepted (the apiserver's limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Serves until shutdown; connections are owned here and dropped at the end.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, tls: Option<TlsAcceptor>) {
    let mut conns = JoinSet::new();
    let shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = accept(&listener) => a,
            _ = shutdown.cancelled() => break,
        };
        while conns.try_join_next().is_some() {}
        let stream = match accepted {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let shared = shared.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    // The CA verified the certificate in the handshake; its CN is the user.
                    let cert_user = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| certs::common_name(c).unwrap_or_default());
                    let svc = service_fn(move |req| handle(shared.clone(), req, true, cert_user.clone()));
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
                None => {
                    let svc = service_fn(move |req| handle(shared.clone(), req, false, None));
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
            }
        });
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// The next connection, set to send small writes at once, as the apiserver's are (Go sets
/// TCP_NODELAY on every TCP connection). Without it a write that follows an unacknowledged one
/// waits for the client's delayed ACK, up to 40 ms on Linux: measured as the first list and
/// the first watch events of a new connection arriving 40 to 45 ms late (bench/steps.rs). A
/// socket that refuses the option is served anyway.
async fn accept(listener: &TcpListener) -> std::io::Result<tokio::net::TcpStream> {
    let (stream, _) = listener.accept().await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn is_watch(path: &str, q: &Query) -> bool {
    q.flag("watch") || path.contains("/watch/")
}

/// The user a request authenticates as: the token's (`sim`), the certificate's CN, or
/// `system:anonymous` where anonymous access is allowed.
fn authenticate(
    shared: &Shared,
    req: &Request<Incoming>,
    tls: bool,
    cert_user: Option<&str>,
) -> Result<String, ApiError> {
    if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        let token = auth.to_str().ok().and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
        return if shared.faults.token_ok(token.trim()) {
            Ok("sim".into())
        } else {
            Err(ApiError::unauthorized())
        };
    }
    if let Some(user) = cert_user {
        return Ok(user.to_string());
    }
    let public = matches!(req.uri().path(), "/version" | "/healthz" | "/livez" | "/readyz");
    if !tls || public {
        Ok("system:anonymous".into())
    } else {
        Err(ApiError::unauthorized())
    }
}

/// The apiserver's impersonation filter, minus authorization (the sim lets every caller
/// impersonate): `Impersonate-User` replaces the user; the other impersonation headers without
/// it are the apiserver's 500.
fn impersonate(req: &Request<Incoming>, user: String) -> Result<String, ApiError> {
    let h = req.headers();
    if let Some(as_user) = h.get("impersonate-user") {
        return Ok(as_user.to_str().unwrap_or_default().to_string());
    }
    let other = h.keys().any(|k| {
        k.as_str() == "impersonate-group"
            || k.as_str() == "impersonate-uid"
            || k.as_str().starts_with("impersonate-extra-")
    });
    if other {
        return Err(ApiError::new(
            500,
            "InternalError",
            "requested impersonation without impersonating a user",
        ));
    }
    Ok(user)
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    tls: bool,
    cert_user: Option<String>,
) -> Result<Resp, Aborted> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let q = Query::parse(Some(&raw_query));
    let watch = is_watch(&path, &q);
    let user = authenticate(&shared, &req, tls, cert_user.as_deref()).and_then(|u| impersonate(&req, u));
    let record = |status: u16| {
        shared.recorder.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: raw_query.clone(),
            status,
            watch,
            user: user.clone().unwrap_or_default(),
        })
    };
    if let Err(e) = &user {
        record(e.code);
        return Ok(wire::error(e));
    }
    match shared.faults.take_reply(method.as_str(), &path, watch) {
        None => {}
        Some(FaultReply::Reset) => {
            record(0);
            return Err(Aborted);
        }
        Some(FaultReply::Delay(d)) => tokio::time::sleep(d).await,
        Some(reply) => {
            let mut e = match reply {
                FaultReply::Gone => ApiError::expired("too old resource version: 1 (2)"),
                FaultReply::TooManyRequests { retry_after } => {
                    let mut e = ApiError::new(
                        429,
                        "TooManyRequests",
                        "the server has received too many requests and has asked us to try again later",
                    );
                    e.retry_after = Some(retry_after);
                    e
                }
                FaultReply::Internal => ApiError::new(
                    500,
                    "InternalError",
                    "Internal error occurred: injected by the simulated cluster",
                ),
                FaultReply::Forbidden { message } => ApiError::new(403, "Forbidden", message),
                FaultReply::Unavailable { retry_after } => {
                    let mut e = ApiError::new(
                        503,
                        "ServiceUnavailable",
                        "the server is currently unable to handle the request",
                    );
                    e.retry_after = retry_after;
                    e
                }
                FaultReply::Reset | FaultReply::Delay(_) => unreachable!("handled above"),
            };
            if e.details.is_none() && e.retry_after.is_some() {
                e.details = Some(serde_json::json!({}));
            }
            record(e.code);
            return Ok(wire::error(&e));
        }
    }
    let headers = req.headers().clone();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let e = ApiError::new(
                413,
                "RequestEntityTooLarge",
                "the request body is too large or could not be read",
            );
            record(e.code);
            return Ok(wire::error(&e));
        }
    };
    let resp = api::route(&shared, &method, &path, &q, &headers, body).await;
    record(resp.status().as_u16());
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_small_writes_at_once() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(tokio::net::TcpStream::connect(addr), accept(&listener));
        let (_client, server) = (client.unwrap(), server.unwrap());
        assert!(
            server.nodelay().unwrap(),
            "Nagle's algorithm is still on for the sim's side"
        );
    }
}
