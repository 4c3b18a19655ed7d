//! Unit tests for run-time credentials: headers, token-file rotation on tokio's paused clock,
//! exec plugins (small shell scripts) with expiry and re-runs, and redaction.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::*;
use crate::config::exec::{V1, V1BETA1, parse_rfc3339};
use crate::config::testenv::{EC_CERT_PEM, EC_KEY_PEM};

/// A fresh directory under the system temp dir, unique per test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wka-auth-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn header_str(h: &HeaderValue) -> &str {
    h.to_str().unwrap()
}

#[tokio::test]
async fn static_token_and_basic_headers_are_sensitive() {
    let creds = Credentials::new(&AuthConfig::Token(Secret::new("abc"))).unwrap();
    let h = creds.authorization().await.unwrap().unwrap();
    assert_eq!(header_str(&h), "Bearer abc");
    assert!(h.is_sensitive());
    let creds = Credentials::new(&AuthConfig::Basic {
        username: "admin".into(),
        password: Secret::new("pw"),
    })
    .unwrap();
    let h = creds.authorization().await.unwrap().unwrap();
    assert_eq!(header_str(&h), "Basic YWRtaW46cHc=");
    assert!(h.is_sensitive());
    for none in [AuthConfig::None, AuthConfig::ClientCertificate] {
        assert!(
            Credentials::new(&none)
                .unwrap()
                .authorization()
                .await
                .unwrap()
                .is_none()
        );
    }
    let err = Credentials::new(&AuthConfig::Token(Secret::new("a\nb-sekrit"))).unwrap_err();
    assert!(!err.to_string().contains("sekrit"));
}

#[tokio::test(start_paused = true)]
async fn token_file_is_reread_after_a_minute_and_kept_when_unreadable() {
    let dir = temp_dir("rotate");
    let path = dir.join("token");
    std::fs::write(&path, "first\n").unwrap();
    let creds = Credentials::new(&AuthConfig::InCluster {
        token_file: path.clone(),
    })
    .unwrap();
    let token = || async { header_str(&creds.authorization().await.unwrap().unwrap()).to_owned() };
    assert_eq!(token().await, "Bearer first");

    std::fs::write(&path, "  second \n").unwrap();
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(token().await, "Bearer first", "cached within the minute");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(token().await, "Bearer second", "re-read after a minute, trimmed");

    std::fs::remove_file(&path).unwrap();
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(token().await, "Bearer second", "last good token kept");

    std::fs::write(&path, "third").unwrap();
    assert_eq!(
        token().await,
        "Bearer third",
        "a failed read is retried on the next request"
    );

    std::fs::write(&path, "fourth").unwrap();
    creds.invalidate();
    assert_eq!(token().await, "Bearer fourth", "invalidate forces a re-read");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn token_file_errors_and_fallback() {
    let dir = temp_dir("fallback");
    let path = dir.join("token");
    let creds = Credentials::new(&AuthConfig::TokenFile(path.clone())).unwrap();
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::ReadTokenFile { .. }));
    assert_eq!(
        err.to_string(),
        format!("token file `{}` cannot be read", path.display())
    );
    std::fs::write(&path, "\n").unwrap();
    let err = creds.authorization().await.unwrap_err();
    assert!(err.to_string().ends_with("is empty"), "{err}");

    let creds = Credentials::new(&AuthConfig::TokenFileWithFallback {
        token_file: dir.join("missing"),
        token: Secret::new("inline"),
    })
    .unwrap();
    let h = creds.authorization().await.unwrap().unwrap();
    assert_eq!(header_str(&h), "Bearer inline");
    std::fs::write(dir.join("missing"), "from-file").unwrap();
    creds.invalidate();
    let h = creds.authorization().await.unwrap().unwrap();
    assert_eq!(header_str(&h), "Bearer from-file", "the file wins when readable");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An exec config running `sh <dir>/plugin.sh`: the script counts its runs in `<dir>/runs`,
/// saves its environment to `<dir>/env`, and prints the ExecCredential given as `body`.
/// (Running `sh script` rather than the script itself avoids ETXTBSY races with other tests
/// forking while the script is being written.)
fn plugin(dir: &Path, api_version: &str, body: &str) -> ExecConfig {
    let script = format!(
        "echo x >> '{d}/runs'\nenv > '{d}/env'\ncat <<'EOF'\n{body}\nEOF\n",
        d = dir.display()
    );
    std::fs::write(dir.join("plugin.sh"), script).unwrap();
    ExecConfig {
        api_version: api_version.into(),
        command: "/bin/sh".into(),
        args: vec![dir.join("plugin.sh").display().to_string()],
        env: vec![("PLUGIN_MODE".into(), "test".into())],
        interactive_mode: Some("IfAvailable".into()),
        provide_cluster_info: true,
        cluster_server: "https://k:6443".into(),
        ..ExecConfig::default()
    }
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("runs"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn token_body(api_version: &str, token: &str, expiry: Option<&str>) -> String {
    let mut status = serde_json::json!({ "token": token });
    if let Some(e) = expiry {
        status["expirationTimestamp"] = e.into();
    }
    serde_json::json!({"apiVersion": api_version, "kind": "ExecCredential", "status": status}).to_string()
}

#[tokio::test]
async fn exec_credential_cached_until_expiry_and_rerun_after_invalidate() {
    let dir = temp_dir("exec-expiry");
    let config = plugin(&dir, V1, &token_body(V1, "exec-tok", Some("2030-01-01T00:00:00Z")));
    let now = Arc::new(AtomicU64::new(0));
    let clock_now = now.clone();
    let expiry = parse_rfc3339("2030-01-01T00:00:00Z").unwrap();
    let clock: Clock =
        Arc::new(move || expiry - Duration::from_secs(3600) + Duration::from_secs(clock_now.load(Ordering::SeqCst)));
    let creds = Credentials::with_clock(&AuthConfig::Exec(config), clock).unwrap();
    let h = creds.authorization().await.unwrap().unwrap();
    assert_eq!(header_str(&h), "Bearer exec-tok");
    assert!(h.is_sensitive());
    creds.authorization().await.unwrap();
    assert_eq!(runs(&dir), 1, "cached before expiry");

    now.store(3599, Ordering::SeqCst);
    creds.clone().authorization().await.unwrap();
    assert_eq!(
        runs(&dir),
        1,
        "still cached one second before expiry (clones share the cache)"
    );
    now.store(3600, Ordering::SeqCst);
    creds.authorization().await.unwrap();
    assert_eq!(runs(&dir), 2, "re-run at expiry");

    now.store(0, Ordering::SeqCst);
    creds.authorization().await.unwrap();
    assert_eq!(runs(&dir), 2);
    creds.invalidate();
    creds.authorization().await.unwrap();
    assert_eq!(runs(&dir), 3, "re-run after invalidate (a 401)");
    creds.authorization().await.unwrap();
    assert_eq!(runs(&dir), 3);

    let env = std::fs::read_to_string(dir.join("env")).unwrap();
    assert!(env.contains("PLUGIN_MODE=test"), "{env}");
    let info = env
        .lines()
        .find_map(|l| l.strip_prefix("KUBERNETES_EXEC_INFO="))
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(info).unwrap();
    assert_eq!(info["apiVersion"], V1);
    assert_eq!(info["spec"]["cluster"]["server"], "https://k:6443");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn exec_without_expiry_is_cached_until_invalidate_and_concurrent_calls_run_once() {
    let dir = temp_dir("exec-noexpiry");
    let config = plugin(&dir, V1BETA1, &token_body(V1BETA1, "t", None));
    let creds = Credentials::new(&AuthConfig::Exec(config)).unwrap();
    let (a, b, c) = tokio::join!(creds.authorization(), creds.authorization(), creds.authorization());
    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    assert_eq!(runs(&dir), 1);
    creds.invalidate();
    creds.authorization().await.unwrap();
    assert_eq!(runs(&dir), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn exec_client_certificate_is_exposed_for_the_transport() {
    let dir = temp_dir("exec-cert");
    let body = serde_json::json!({
        "apiVersion": V1, "kind": "ExecCredential",
        "status": {"clientCertificateData": EC_CERT_PEM, "clientKeyData": EC_KEY_PEM},
    })
    .to_string();
    let creds = Credentials::new(&AuthConfig::Exec(plugin(&dir, V1, &body))).unwrap();
    assert!(creds.uses_exec());
    assert!(creds.exec_client_identity().is_none(), "nothing before the plugin ran");
    assert!(creds.authorization().await.unwrap().is_none(), "no bearer header");
    let id = creds.exec_client_identity().unwrap();
    assert_eq!(id.certificate_pem, EC_CERT_PEM.as_bytes());
    assert_eq!(id.key_pem.expose(), EC_KEY_PEM);
    assert!(!format!("{id:?}").contains("PRIVATE KEY"));

    let resolver = creds.exec_cert_resolver().unwrap();
    let p256 = [rustls::SignatureScheme::ECDSA_NISTP256_SHA256];
    let key = resolver.resolve(&[], &p256).expect("a certified key for ECDSA P-256");
    assert_eq!(key.cert.len(), 1);
    assert!(resolver.has_certs());
    let rsa_only = [rustls::SignatureScheme::RSA_PSS_SHA256];
    assert!(
        resolver.resolve(&[], &rsa_only).is_none(),
        "an EC key cannot sign RSA-PSS"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn exec_errors_carry_the_install_hint_and_stderr_but_no_token() {
    let missing = ExecConfig {
        api_version: V1.into(),
        command: "/nonexistent/gke-gcloud-auth-plugin".into(),
        install_hint: Some("Install gke-gcloud-auth-plugin with gcloud components install".into()),
        interactive_mode: Some("Never".into()),
        ..ExecConfig::default()
    };
    let err = Credentials::new(&AuthConfig::Exec(missing.clone()))
        .unwrap()
        .authorization()
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::ExecNotFound { .. }));
    assert_eq!(
        err.to_string(),
        "exec credential plugin `/nonexistent/gke-gcloud-auth-plugin` was not found; \
         Install gke-gcloud-auth-plugin with gcloud components install"
    );

    let failing = ExecConfig {
        command: "/bin/sh".into(),
        args: vec![
            "-c".into(),
            "echo 'token expired, run aws sso login' >&2; exit 3".into(),
        ],
        install_hint: None,
        ..missing.clone()
    };
    let err = Credentials::new(&AuthConfig::Exec(failing))
        .unwrap()
        .authorization()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("failed (exit status: 3): token expired, run aws sso login"),
        "{text}"
    );

    let always = ExecConfig {
        interactive_mode: Some("Always".into()),
        ..missing.clone()
    };
    let err = Credentials::new(&AuthConfig::Exec(always))
        .unwrap()
        .authorization()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("interactiveMode: Always"), "{err}");

    let dir = temp_dir("exec-badout");
    let bad = plugin(
        &dir,
        V1,
        r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"sekrit-token","expirationTimestamp":"tomorrow"}}"#,
    );
    let err = Credentials::new(&AuthConfig::Exec(bad))
        .unwrap()
        .authorization()
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("not RFC 3339") && !text.contains("sekrit-token"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn debug_of_credentials_and_config_shows_no_secret() {
    use crate::config::{Config, Origin, TlsConfig};
    let config = Config {
        server: "https://k:6443".parse().unwrap(),
        namespace: "default".into(),
        tls: TlsConfig {
            client_key_pem: Some(Secret::new("-----BEGIN PRIVATE KEY-----sekrit-key")),
            ..TlsConfig::default()
        },
        proxy_url: None,
        auth: AuthConfig::Basic {
            username: "admin".into(),
            password: Secret::new("sekrit-password"),
        },
        impersonate: Default::default(),
        origin: Origin::Unknown,
    };
    let creds = Credentials::new(&config.auth).unwrap();
    let token_config = AuthConfig::Token(Secret::new("sekrit-token"));
    let auth_error = Credentials::new(&AuthConfig::Token(Secret::new("sekrit-token\nx"))).unwrap_err();
    let text = format!(
        "{config:?} {creds:?} {token_config:?} {:?} {auth_error} {auth_error:?}",
        Credentials::new(&token_config).unwrap()
    );
    for secret in ["sekrit-key", "sekrit-password", "sekrit-token"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

/// The token file is re-read at run time under the same bound as at load.
#[tokio::test]
async fn a_token_file_is_reread_under_a_bound() {
    let creds = Credentials::new(&AuthConfig::TokenFile(PathBuf::from("/dev/zero"))).unwrap();
    let err = creds.authorization().await.unwrap_err();
    assert!(matches!(err, AuthError::ReadTokenFile { .. }), "{err}");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(cause, "holds more than 1 MiB (the limit for this file)");
}
