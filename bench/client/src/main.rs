//! Client throughput benchmark. `serve` is a synthetic apiserver (plain HTTP, chunked replies,
//! one chunk per event or per 64 lines, like a flushing apiserver/kubelet): a watch of N pod
//! events, and a log of N timestamped lines for a pod whose container has terminated.
//! `watch ADDR N` and `logs ADDR N` read them through our client and print the rate.
//!
//! `decode N` times decoding the same events from memory (no transport).
//!
//! Usage: client-bench serve N | watch ADDR N | logs ADDR N | decode N

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use woodpecker_k8s_agent::kube::config::{Config, TlsConfig};
use woodpecker_k8s_agent::kube::logs::FollowOptions;
use woodpecker_k8s_agent::kube::types::Pod;
use woodpecker_k8s_agent::kube::{Api, Client, WatchParams};

/// A body sent as the given chunks (chunked transfer encoding, no length).
struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

fn pod_json(i: usize, terminated: bool) -> serde_json::Value {
    let state = if terminated {
        serde_json::json!({"terminated": {"exitCode": 0, "reason": "Completed"}})
    } else {
        serde_json::json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}})
    };
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("wp-01h{i:08}"), "namespace": "bench", "uid": format!("6f1c8d2e-0000-4000-8000-{i:012}"),
            "resourceVersion": (1000 + i).to_string(), "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"step": "build", "woodpecker-ci.org/step": "build", "woodpecker-ci.org/task-uuid": "01HXYZ"},
            "annotations": {"woodpecker-ci.org/step": "build"}},
        "spec": {"restartPolicy": "Never", "nodeName": "node-1", "containers": [{"name": "step", "image": "alpine:3.20",
            "command": ["/bin/sh", "-c", "echo $CI_SCRIPT | base64 -d | /bin/sh -e"], "workingDir": "/woodpecker/src",
            "env": [{"name": "CI", "value": "woodpecker"}, {"name": "CI_PIPELINE_NUMBER", "value": "42"}],
            "volumeMounts": [{"name": "workspace", "mountPath": "/woodpecker"}]}],
            "volumes": [{"name": "workspace", "persistentVolumeClaim": {"claimName": "wp-01hxyz-0-default"}}]},
        "status": {"phase": if terminated { "Succeeded" } else { "Running" }, "hostIP": "10.0.0.1", "podIP": "10.244.0.7",
            "startTime": "2026-01-01T00:00:00Z",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"}],
            "containerStatuses": [{"name": "step", "ready": true, "restartCount": 0, "image": "alpine:3.20",
                "imageID": "docker.io/library/alpine@sha256:0000", "containerID": "containerd://abcd", "state": state}]}
    })
}

struct Bodies {
    watch: Vec<Bytes>,
    log: Vec<Bytes>,
    pod: Bytes,
}

fn bodies(n: usize) -> Bodies {
    let watch = (0..n)
        .map(|i| {
            // The apiserver writes "type" before "object" (json! would sort the keys).
            let object = serde_json::to_string(&pod_json(i, false)).unwrap();
            let line = format!("{{\"type\":\"MODIFIED\",\"object\":{object}}}\n").into_bytes();
            Bytes::from(line)
        })
        .collect();
    let mut log = Vec::new();
    let mut chunk = Vec::new();
    for i in 0..n {
        let (s, ns) = (i / 1000, (i % 1000) * 1_000_000);
        chunk.extend_from_slice(
            format!(
                "2026-01-01T00:{:02}:{:02}.{ns:09}Z line {i}: compiling crate number {i} of the build, all fine\n",
                s / 60 % 60,
                s % 60
            )
            .as_bytes(),
        );
        if i % 64 == 63 {
            log.push(Bytes::from(std::mem::take(&mut chunk)));
        }
    }
    if !chunk.is_empty() {
        log.push(Bytes::from(chunk));
    }
    Bodies {
        watch,
        log,
        pod: Bytes::from(serde_json::to_vec(&pod_json(0, true)).unwrap()),
    }
}

async fn handle(b: Arc<Bodies>, req: Request<Incoming>) -> Result<Response<Chunks>, Infallible> {
    let path = req.uri().path();
    let chunks: Vec<Bytes> = if path.ends_with("/log") {
        b.log.clone()
    } else if req.uri().query().unwrap_or_default().contains("watch=1") {
        b.watch.clone()
    } else {
        vec![b.pod.clone()]
    };
    Ok(Response::builder()
        .header(
            "content-type",
            if path.ends_with("/log") {
                "text/plain"
            } else {
                "application/json"
            },
        )
        .body(Chunks(chunks.into()))
        .unwrap())
}

async fn serve(n: usize) {
    let b = Arc::new(bodies(n));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap());
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let b = b.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(b.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn client(addr: &str) -> Client {
    Client::new(Config {
        server: format!("http://{addr}").parse().unwrap(),
        namespace: "bench".into(),
        tls: TlsConfig::default(),
        proxy_url: None,
        auth: Default::default(),
        origin: Default::default(),
    })
    .unwrap()
}

async fn watch(addr: &str, n: usize) {
    let pods: Api<Pod> = Api::default_namespaced(client(addr));
    let start = Instant::now();
    let mut stream = pods.watch(&WatchParams::default(), "1").await.unwrap();
    let mut count = 0;
    while let Some(ev) = stream.next().await {
        ev.unwrap();
        count += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(count, n);
    println!("{count} {secs:.4} {:.0}", count as f64 / secs);
}

async fn logs(addr: &str, n: usize) {
    let pods: Api<Pod> = Api::default_namespaced(client(addr));
    let start = Instant::now();
    let mut follower = pods.follow_log("p", "step", FollowOptions::default());
    let mut count = 0;
    while let Some(_line) = follower.next_line().await.unwrap() {
        count += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(count, n);
    println!("{count} {secs:.4} {:.0}", count as f64 / secs);
}

/// Decoding alone, from memory: separates parsing cost from the transport.
fn decode(n: usize) {
    let b = bodies(n);
    let start = Instant::now();
    for line in &b.watch {
        woodpecker_k8s_agent::kube::watch::decode_event::<Pod>(&line[..line.len() - 1]).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{n} {secs:.4} {:.0}", n as f64 / secs);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match args.get(1).map(String::as_str) {
        Some("serve") => rt.block_on(serve(args[2].parse().unwrap())),
        Some("watch") => rt.block_on(watch(&args[2], args[3].parse().unwrap())),
        Some("decode") => decode(args[2].parse().unwrap()),
        Some("logs") => rt.block_on(logs(&args[2], args[3].parse().unwrap())),
        _ => eprintln!("usage: client-bench serve N | watch ADDR N | logs ADDR N | decode N"),
    }
}
