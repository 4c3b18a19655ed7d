//! Our configuration and run-time credentials against the simulated cluster over TLS: the
//! sim's own kubeconfig resolves to it, and tokens from a token file or an exec plugin (and an
//! exec plugin's client certificate) are accepted, then refreshed after a 401 once rotated.
//! Requests go through the bare `Raw` client, so this does not depend on our transport.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use kube::auth::Credentials;
use kube::config::{AuthConfig, Overrides, ProcessEnv, infer};
use sim::Sim;

use crate::common::{Raw, start_sim};

const PODS: &str = "/api/v1/namespaces/default/pods";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wka-simauth-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A kubeconfig in `dir` for the sim's cluster with the given `user:` body.
fn write_kubeconfig(sim: &Sim, dir: &Path, user: &str) -> PathBuf {
    let ca = base64::engine::general_purpose::STANDARD.encode(sim.ca_pem().unwrap());
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\ncontexts:\n- name: t\n  context: {{cluster: sim, user: u}}\n\
         clusters:\n- name: sim\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\n\
         users:\n- name: u\n  user:\n{user}",
        sim.url()
    );
    let path = dir.join("config");
    std::fs::write(&path, text).unwrap();
    path
}

fn credentials(kubeconfig: PathBuf) -> Credentials {
    let overrides = Overrides {
        kubeconfig: Some(kubeconfig),
        ..Overrides::default()
    };
    let config = infer(&ProcessEnv, &overrides).unwrap();
    Credentials::new(&config.auth).unwrap()
}

/// GET with the header our credentials give; the HTTP status.
async fn get_with(sim: &Sim, creds: &Credentials) -> u16 {
    let header = creds.authorization().await.unwrap();
    let mut raw = Raw::new(sim);
    raw.token = header.map(|h| h.to_str().unwrap().strip_prefix("Bearer ").unwrap().to_owned());
    raw.get(PODS).await.status
}

/// An exec plugin run as `sh plugin.sh` (never exec'd directly: no ETXTBSY while it is
/// written): counts runs in `runs` and prints the token in `current` with `expiry`.
fn token_plugin(dir: &Path, expiry: &str) -> String {
    let script = format!(
        "echo x >> '{d}/runs'\nprintf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\
         \"status\":{{\"token\":\"%s\",\"expirationTimestamp\":\"{expiry}\"}}}}' \"$(cat '{d}/current')\"\n",
        d = dir.display()
    );
    std::fs::write(dir.join("plugin.sh"), script).unwrap();
    format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: ['{}']\n      interactiveMode: Never\n",
        dir.join("plugin.sh").display()
    )
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("runs"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_sims_kubeconfig_resolves_to_the_sim() {
    let sim = start_sim().await;
    let overrides = Overrides {
        kubeconfig: Some(sim.kubeconfig_path().to_owned()),
        ..Overrides::default()
    };
    let config = infer(&ProcessEnv, &overrides).unwrap();
    assert_eq!(config.server.to_string().trim_end_matches('/'), sim.url());
    assert_eq!(config.namespace, "woodpecker");
    assert_eq!(config.tls.ca_pem.as_deref(), sim.ca_pem().map(str::as_bytes));
    assert!(matches!(config.auth, AuthConfig::Token(_)));
    let creds = Credentials::new(&config.auth).unwrap();
    assert_eq!(get_with(&sim, &creds).await, 200);
    let anonymous = Credentials::new(&AuthConfig::None).unwrap();
    assert_eq!(get_with(&sim, &anonymous).await, 401, "the sim really checks tokens");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_rotated_token_file_is_picked_up_after_a_401() {
    let sim = start_sim().await;
    let dir = temp_dir("tokenfile");
    std::fs::write(dir.join("token"), format!("{}\n", sim.token())).unwrap();
    let creds = credentials(write_kubeconfig(&sim, &dir, "    tokenFile: token\n"));
    assert_eq!(get_with(&sim, &creds).await, 200);

    sim.faults().set_token("rotated-token-1");
    std::fs::write(dir.join("token"), "rotated-token-1\n").unwrap();
    assert_eq!(
        get_with(&sim, &creds).await,
        401,
        "the old token is cached within the minute"
    );
    creds.invalidate();
    assert_eq!(get_with(&sim, &creds).await, 200, "re-read after the 401");
    sim.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_exec_token_is_cached_and_the_plugin_rerun_after_a_401() {
    let sim = start_sim().await;
    let dir = temp_dir("exec");
    std::fs::write(dir.join("current"), sim.token()).unwrap();
    let user = token_plugin(&dir, "2099-01-01T00:00:00Z");
    let creds = credentials(write_kubeconfig(&sim, &dir, &user));
    assert_eq!(get_with(&sim, &creds).await, 200);
    assert_eq!(get_with(&sim, &creds).await, 200);
    assert_eq!(runs(&dir), 1, "cached until expiry");

    sim.faults().set_token("rotated-exec-token");
    std::fs::write(dir.join("current"), "rotated-exec-token").unwrap();
    assert_eq!(get_with(&sim, &creds).await, 401);
    assert_eq!(runs(&dir), 1);
    creds.invalidate();
    assert_eq!(get_with(&sim, &creds).await, 200);
    assert_eq!(runs(&dir), 2, "re-run once after the 401");
    sim.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_expired_exec_token_runs_the_plugin_again() {
    let sim = start_sim().await;
    let dir = temp_dir("exec-expired");
    std::fs::write(dir.join("current"), sim.token()).unwrap();
    let user = token_plugin(&dir, "2001-01-01T00:00:00Z");
    let creds = credentials(write_kubeconfig(&sim, &dir, &user));
    assert_eq!(get_with(&sim, &creds).await, 200);
    assert_eq!(get_with(&sim, &creds).await, 200);
    assert_eq!(runs(&dir), 2, "an expired credential is never reused");
    sim.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_exec_client_certificate_authenticates() {
    let sim = start_sim().await;
    let dir = temp_dir("exec-cert");
    let (cert, key) = sim.client_certificate("ci-exec", &["system:masters"]).unwrap();
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
        "status": {"clientCertificateData": cert, "clientKeyData": key},
    });
    std::fs::write(dir.join("credential.json"), credential.to_string()).unwrap();
    let user = format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: /bin/cat\n      args: ['{}']\n",
        dir.join("credential.json").display()
    );
    let creds = credentials(write_kubeconfig(&sim, &dir, &user));
    assert!(creds.authorization().await.unwrap().is_none(), "no bearer token");
    let identity = creds.exec_client_identity().unwrap();
    let raw = Raw::with_identity(
        &sim,
        Some((
            String::from_utf8(identity.certificate_pem).unwrap(),
            identity.key_pem.expose().to_owned(),
        )),
    );
    assert_eq!(raw.get(PODS).await.status, 200);
    sim.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The whole path through our client: kubeconfig -> exec plugin -> client certificate offered
/// by `Credentials::exec_cert_resolver` at the TLS handshake -> list pods.
#[tokio::test]
async fn our_client_authenticates_with_an_exec_client_certificate() {
    use kube::types::Pod;
    use kube::{Api, Client, ListParams};
    let sim = start_sim().await;
    let dir = temp_dir("client-exec-cert");
    let (cert, key) = sim.client_certificate("ci-exec", &["system:masters"]).unwrap();
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
        "status": {"clientCertificateData": cert, "clientKeyData": key},
    });
    std::fs::write(dir.join("credential.json"), credential.to_string()).unwrap();
    let user = format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/cat\n      args: ['{}']\n      interactiveMode: Never\n",
        dir.join("credential.json").display()
    );
    let overrides = Overrides {
        kubeconfig: Some(write_kubeconfig(&sim, &dir, &user)),
        ..Overrides::default()
    };
    let config = infer(&ProcessEnv, &overrides).unwrap();
    let client = Client::new(config).unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let list = pods.list(&ListParams::default()).await.unwrap();
    assert!(list.items.is_empty());
    // No bearer token exists here, so the sim let us in on the certificate, at the first try.
    assert!(sim.requests().iter().all(|r| r.status != 401), "{:?}", sim.requests());
    sim.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
