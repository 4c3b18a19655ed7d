//! Shared test helpers: start a simulated cluster (`start_sim()`, `start_sim_with()`), a raw
//! HTTP(S) client that trusts it (`Raw`, for tests that must not depend on our kube client),
//! `exec --embedded` through the binary, and small waiting and comparing helpers.

pub mod gomarshal;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use sim::{Sim, SimConfig};

/// A fast config: TLS, scripted runner, 5 ms kubelet tick.
pub fn fast_config() -> SimConfig {
    SimConfig {
        tick: Duration::from_millis(5),
        // Woodpecker's service pods run until deleted, as on a cluster.
        run_until_deleted_label: Some(woodpecker_k8s_agent::backend::SERVICE_LABEL.into()),
        ..SimConfig::default()
    }
}

/// A TLS simulated cluster with the scripted runner and a fast kubelet.
pub async fn start_sim() -> Sim {
    start_sim_with(fast_config()).await
}

pub async fn start_sim_with(cfg: SimConfig) -> Sim {
    Sim::start(cfg).await.expect("start the simulated cluster")
}

/// Polls `f` every 5 ms until it returns `Some`, or panics after `secs` seconds naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the sim's stored pod satisfies `pred`; returns it.
pub async fn wait_pod(sim: &Sim, ns: &str, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, 10, || {
        let p = sim.object("pods", ns, name).filter(|p| pred(p));
        async move { p }
    })
    .await
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A bare HTTP client for the sim: bearer token, the sim's CA, JSON helpers.
#[derive(Clone)]
pub struct Raw {
    client: Client<Https, Full<Bytes>>,
    pub base: String,
    pub token: Option<String>,
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Raw {
    pub fn new(sim: &Sim) -> Raw {
        Self::with_identity(sim, None)
    }

    /// A client presenting a client certificate (cert PEM, key PEM) and no token.
    pub fn with_identity(sim: &Sim, identity: Option<(String, String)>) -> Raw {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = sim.ca_pem() {
            roots
                .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
                .unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let has_identity = identity.is_some();
        let tls = match identity {
            Some((cert, key)) => {
                let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                builder
                    .with_client_auth_cert(certs, PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap())
                    .unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        Raw {
            client,
            base: sim.url(),
            token: if has_identity {
                None
            } else {
                Some(sim.token().to_string())
            },
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<&Value>,
    ) -> hyper::Response<Incoming> {
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        req = req.header("accept", accept.unwrap_or("application/json"));
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Full::new(Bytes::from(serde_json::to_vec(b).unwrap()))
            }
            None => Full::new(Bytes::new()),
        };
        self.client
            .request(req.body(body).unwrap())
            .await
            .expect("request to the sim")
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let resp = self.send(method, path, None, body).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str, body: Option<&Value>) -> Reply {
        self.call(Method::DELETE, path, body).await
    }

    /// Opens a streaming GET (watch, log follow) and returns a line reader over it.
    pub async fn lines(&self, path: &str, accept: Option<&str>) -> (StatusCode, Lines) {
        let resp = self.send(Method::GET, path, accept, None).await;
        (
            resp.status(),
            Lines {
                body: resp.into_body(),
                buf: Vec::new(),
                done: false,
            },
        )
    }
}

/// Newline-delimited reader over a streamed body.
pub struct Lines {
    body: Incoming,
    buf: Vec<u8>,
    done: bool,
}

/// How a line read ended.
#[derive(Debug, PartialEq)]
pub enum Next {
    Line(String),
    /// The stream ended cleanly.
    End,
    /// The connection broke mid-stream.
    Broken,
}

impl Lines {
    /// The next line, within `secs` seconds (panics on timeout).
    pub async fn next(&mut self, secs: u64) -> Next {
        tokio::time::timeout(Duration::from_secs(secs), self.next_inner())
            .await
            .expect("timed out reading a streamed line")
    }

    async fn next_inner(&mut self) -> Next {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Next::Line(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
            }
            if self.done {
                return Next::End;
            }
            match self.body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.extend_from_slice(&d);
                    }
                }
                Some(Err(_)) => return Next::Broken,
                None => self.done = true,
            }
        }
    }

    /// The next line parsed as JSON.
    pub async fn event(&mut self, secs: u64) -> Value {
        match self.next(secs).await {
            Next::Line(l) => serde_json::from_str(&l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}")),
            other => panic!("stream ended ({other:?}) while an event was expected"),
        }
    }
}

/// Runs the real kubectl against `sim` (its kubeconfig, a fresh cache dir per sim). Fails the
/// test with install instructions when kubectl is missing.
pub fn kubectl_command(sim: &Sim, args: &[&str]) -> tokio::process::Command {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let found = std::process::Command::new(&kubectl)
        .arg("version")
        .arg("--client")
        .output();
    if found.is_err() {
        panic!(
            "kubectl is required for this test but `{kubectl}` was not found: install kubectl 1.32 \
             (e.g. `apt-get install kubectl` from the Kubernetes apt repository, or download it from dl.k8s.io) \
             or point KUBECTL at it"
        );
    }
    let mut cmd = tokio::process::Command::new(kubectl);
    cmd.args(args)
        .env("KUBECONFIG", sim.kubeconfig_path())
        .env("KUBECACHEDIR", sim.dir().join("kubectl-cache"))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs kubectl to completion: (exit code, stdout, stderr).
pub async fn kubectl(sim: &Sim, args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), kubectl_command(sim, args).output())
        .await
        .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within 60s"))
        .expect("run kubectl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `exec --embedded ARGS` in `dir` (the simulated cluster, host runner) and returns the
/// exit code and the output: stderr first, as the summary table ends stdout.
pub fn exec_embedded(args: &[&str], dir: &Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_woodpecker-k8s-agent"))
        .args(["exec", "--embedded"])
        .args(args)
        .current_dir(dir)
        .env("WOODPECKER_BACKEND_K8S_START_TIMEOUT", "20s")
        .output()
        .expect("run the binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    (out.status.code(), text)
}

/// Panics unless a log arrived as `want`, every line once and whole, naming the count, the
/// fragments and the first difference.
pub fn assert_lines_exactly(name: &str, got: &[String], want: &[String]) {
    if got != want {
        let fragments: Vec<&String> = got.iter().filter(|l| !want.contains(l)).collect();
        panic!(
            "{name}: {} lines of {}, fragments {fragments:?}, first difference at {:?}",
            got.len(),
            want.len(),
            got.iter().zip(want).position(|(a, b)| a != b)
        );
    }
}
