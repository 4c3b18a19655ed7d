//! Unit tests for the exec plugin protocol: KUBERNETES_EXEC_INFO, output parsing, RFC 3339.

use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::config::testenv::{EC_CERT_PEM, EC_KEY_PEM};

fn config(api_version: &str) -> ExecConfig {
    ExecConfig {
        api_version: api_version.into(),
        command: "plugin".into(),
        cluster_server: "https://k:6443".into(),
        cluster_ca_data: Some("Q0E=".into()),
        cluster_server_name: Some("api".into()),
        cluster_proxy_url: Some("http://p:3128".into()),
        ..ExecConfig::default()
    }
}

#[test]
fn rfc3339_parses_utc_fractions_and_offsets() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
    let t = parse_rfc3339("2026-11-28T01:02:03Z").unwrap();
    assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_795_827_723);
    let t = parse_rfc3339("2026-11-28T01:02:03.5Z").unwrap();
    assert_eq!(
        t.duration_since(UNIX_EPOCH).unwrap(),
        Duration::new(1_795_827_723, 500_000_000)
    );
    let t = parse_rfc3339("2026-11-28T03:02:03+02:00").unwrap();
    assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_795_827_723);
    let t = parse_rfc3339("2026-11-27T23:32:03-01:30").unwrap();
    assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_795_827_723);
    let t = parse_rfc3339("2024-02-29T12:00:00.123456789123Z").unwrap();
    assert_eq!(
        t.duration_since(UNIX_EPOCH).unwrap(),
        Duration::new(1_709_208_000, 123_456_789)
    );
}

#[test]
fn rfc3339_rejects_malformed() {
    for bad in [
        "",
        "2026-11-28",
        "2026-11-28T01:02:03",
        "2026-13-01T00:00:00Z",
        "2025-02-29T00:00:00Z",
        "2026-11-28T24:00:00Z",
        "2026-11-28T01:02:03.Z",
        "2026-11-28T01:02:03+0200",
        "2026-11-28T01:02:03X",
        "1969-12-31T23:59:59Z",
        "20a6-11-28T01:02:03Z",
        "+026-11-28T01:02:03Z",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
}

#[test]
fn exec_info_has_cluster_only_when_asked() {
    let mut c = config(V1);
    let info: serde_json::Value = serde_json::from_str(&exec_info(&c)).unwrap();
    assert_eq!(info["kind"], "ExecCredential");
    assert_eq!(info["apiVersion"], V1);
    assert_eq!(info["spec"]["interactive"], false);
    assert!(info["spec"].get("cluster").is_none());
    c.provide_cluster_info = true;
    let info: serde_json::Value = serde_json::from_str(&exec_info(&c)).unwrap();
    let cluster = &info["spec"]["cluster"];
    assert_eq!(cluster["server"], "https://k:6443");
    assert_eq!(cluster["certificate-authority-data"], "Q0E=");
    assert_eq!(cluster["tls-server-name"], "api");
    assert_eq!(cluster["proxy-url"], "http://p:3128");
    assert!(cluster.get("config").is_none());
    c.cluster_config = Some(serde_json::json!({"audience": "ci"}));
    let info: serde_json::Value = serde_json::from_str(&exec_info(&c)).unwrap();
    assert_eq!(info["spec"]["cluster"]["config"]["audience"], "ci");
}

#[test]
fn output_with_token_and_expiry() {
    let out = format!(
        r#"{{"apiVersion":"{V1BETA1}","kind":"ExecCredential","status":{{"token":"tok\n","expirationTimestamp":"2030-01-01T00:00:00Z"}}}}"#
    );
    let cred = parse_output(&config(V1BETA1), out.as_bytes()).unwrap();
    assert_eq!(cred.token.unwrap().expose(), "tok");
    assert_eq!(cred.expires_at, parse_rfc3339("2030-01-01T00:00:00Z"));
    assert!(cred.client_certificate_pem.is_none());
}

#[test]
fn output_with_client_certificate() {
    let out = serde_json::json!({
        "apiVersion": V1, "kind": "ExecCredential",
        "status": {"clientCertificateData": EC_CERT_PEM, "clientKeyData": EC_KEY_PEM},
    });
    let cred = parse_output(&config(V1), out.to_string().as_bytes()).unwrap();
    assert!(cred.token.is_none() && cred.expires_at.is_none());
    assert_eq!(cred.client_certificate_pem.as_deref(), Some(EC_CERT_PEM.as_bytes()));
    assert_eq!(cred.client_key_pem.unwrap().expose(), EC_KEY_PEM);
}

#[test]
fn output_errors_never_quote_the_output() {
    let c = config(V1);
    let cases = [
        ("not json sekrit", "not ExecCredential JSON"),
        (
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"sekrit","status":{"token":"sekrit"}}"#,
            "a `kind` other than `ExecCredential`",
        ),
        (
            r#"{"apiVersion":"sekrit","kind":"ExecCredential","status":{"token":"sekrit"}}"#,
            "other than the configured `client.authentication.k8s.io/v1`",
        ),
        (
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential"}"#,
            "no `status`",
        ),
        (
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{}}"#,
            "neither a `token`",
        ),
        (
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientKeyData":"sekrit"}}"#,
            "only one of",
        ),
        (
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"sekrit","expirationTimestamp":"sekrit"}}"#,
            "not RFC 3339",
        ),
        (
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientCertificateData":"x","clientKeyData":"sekrit"}}"#,
            "no PEM certificate",
        ),
    ];
    let mismatched = serde_json::json!({
        "apiVersion": V1, "kind": "ExecCredential",
        "status": {"clientCertificateData": crate::config::testenv::CERT_PEM, "clientKeyData": EC_KEY_PEM},
    })
    .to_string();
    let e = parse_output(&c, mismatched.as_bytes()).unwrap_err();
    assert_eq!(e, "printed `clientKeyData` that does not match the client certificate");
    for (out, want) in cases {
        let e = parse_output(&c, out.as_bytes()).unwrap_err();
        assert!(e.contains(want), "{out}: {e}");
        assert!(!e.contains("sekrit"), "{e}");
    }
}
