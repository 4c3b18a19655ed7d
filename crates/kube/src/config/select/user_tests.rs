//! Unit tests for resolving a user: token, token file, basic, client certificates, exec
//! plugins, auth-provider, and which method wins (client-go's order).

use std::path::{Path, PathBuf};

use super::tests::{env_with, err, kubeconfig, resolve, resolve_with};
use crate::config::AuthConfig;
use crate::config::testenv::{
    CA_PEM, CERT_PEM, EC_CERT_PEM, EC_KEY_PEM, PKCS8_CERT_PEM, PKCS8_KEY_PEM, RSA_KEY_PEM, b64,
};

/// kubectl refuses a context naming a user no file defines (`cannot locate user`); we went on
/// anonymously. No user named at all stays anonymous.
#[test]
fn an_undefined_user_is_refused_with_the_names() {
    let yaml = kubeconfig("", "    token: t\n").replace("user: u}", "user: ghost}");
    let e = resolve_with(&env_with(&yaml)).unwrap_err().to_string();
    assert_eq!(
        e,
        "kubeconfig `/k/config`: context `c`: user `ghost` is not defined (kubectl: cannot locate user)"
    );
    let yaml = kubeconfig("", "    token: t\n").replace(", user: u}", "}");
    assert!(matches!(resolve_with(&env_with(&yaml)).unwrap().auth, AuthConfig::None));
}

/// YAML makes a plain `86753098675309` a number; kubectl refuses a number (or a boolean) for
/// a string field (`cannot unmarshal number into ... of type string`). We took its text.
#[test]
fn numbers_and_booleans_are_not_strings_as_in_kubectl() {
    for (user, field) in [
        (
            "    token: 86753098675309\n",
            "users[0].user.token: invalid type: an integer, expected a string",
        ),
        (
            "    username: u\n    password: 1234\n",
            "users[0].user.password: invalid type: an integer, expected a string",
        ),
        (
            "    token: true\n",
            "users[0].user.token: invalid type: a boolean, expected a string",
        ),
        (
            "    tokenFile: 1.5\n",
            "users[0].user.tokenFile: invalid type: a floating-point number, expected a string",
        ),
    ] {
        let e = resolve("", user).unwrap_err();
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert!(cause.starts_with(field), "{user}: {cause}");
        assert!(!cause.contains("86753098675309") && !cause.contains("1234"), "{cause}");
    }
    // Quoted, or null, it is fine.
    let config = resolve("", "    token: '86753098675309'\n    as: ~\n").unwrap();
    assert!(matches!(&config.auth, AuthConfig::Token(t) if t.expose() == "86753098675309"));
}

#[test]
fn token_is_trimmed_and_token_file_resolves_relative() {
    let config = resolve("", "    token: ' abc '\n").unwrap();
    assert!(matches!(&config.auth, AuthConfig::Token(t) if t.expose() == "abc"));
    let config = resolve("", "    tokenFile: token\n").unwrap();
    assert!(matches!(&config.auth, AuthConfig::TokenFile(p) if p == Path::new("/k/token")));
    let e = err("", "    tokenFile: gone\n");
    assert_eq!(
        e,
        "kubeconfig `/k/config`: user `u`: `tokenFile` file `/k/gone` cannot be read"
    );
    let env = env_with(&kubeconfig("", "    tokenFile: /k/blank\n")).file("/k/blank", " \n");
    let e = resolve_with(&env).unwrap_err().to_string();
    assert!(e.ends_with("`tokenFile` file `/k/blank` is empty"), "{e}");
}

#[test]
fn token_and_token_file_send_the_file_with_the_token_as_fallback() {
    let config = resolve("", "    token: inline\n    tokenFile: token\n").unwrap();
    match config.auth {
        AuthConfig::TokenFileWithFallback { token_file, token } => {
            assert_eq!(token_file, PathBuf::from("/k/token"));
            assert_eq!(token.expose(), "inline");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn basic_auth_and_its_conflict_with_tokens() {
    let config = resolve("", "    username: admin\n    password: pw\n").unwrap();
    assert!(
        matches!(&config.auth, AuthConfig::Basic { username, password } if username == "admin" && password.expose() == "pw")
    );
    let e = err("", "    username: admin\n    password: pw\n    token: t\n");
    assert!(
        e.starts_with("kubeconfig `/k/config`: user `u`: `username` cannot be combined"),
        "{e}"
    );
}

#[test]
fn client_certificate_files_and_data_with_every_key_format() {
    let config = resolve(
        "",
        "    client-certificate: pki/client.crt\n    client-key: pki/client.key\n",
    )
    .unwrap();
    assert!(matches!(config.auth, AuthConfig::ClientCertificate));
    assert_eq!(config.tls.client_cert_pem.as_deref(), Some(CERT_PEM.as_bytes()));
    assert_eq!(config.tls.client_key_pem.unwrap().expose(), RSA_KEY_PEM);
    for (cert, key) in [
        (CERT_PEM, RSA_KEY_PEM),
        (EC_CERT_PEM, EC_KEY_PEM),
        (PKCS8_CERT_PEM, PKCS8_KEY_PEM),
    ] {
        let user = format!(
            "    client-certificate: missing\n    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(cert),
            b64(key)
        );
        let config = resolve("", &user).unwrap();
        assert_eq!(config.tls.client_key_pem.unwrap().expose(), key);
    }
    let user = format!(
        "    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(CERT_PEM),
        b64(EC_KEY_PEM)
    );
    let e = err("", &user);
    assert_eq!(
        e,
        "kubeconfig `/k/config`: user `u`: `client-key-data` does not match the client certificate"
    );
}

#[test]
fn client_certificate_errors_name_the_field() {
    let e = err("", &format!("    client-certificate-data: {}\n", b64(CERT_PEM)));
    assert!(
        e.starts_with("kubeconfig `/k/config`: user `u`: `client-key` is not set"),
        "{e}"
    );
    let e = err(
        "",
        &format!(
            "    client-certificate-data: {}\n    client-key-data: '!!'\n",
            b64(CERT_PEM)
        ),
    );
    assert_eq!(
        e,
        "kubeconfig `/k/config`: user `u`: `client-key-data` is not valid base64"
    );
    let e = err(
        "",
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(CERT_PEM),
            b64(CA_PEM)
        ),
    );
    assert!(
        e.ends_with("`client-key-data` holds no PEM private key (want RSA, EC or PKCS#8)"),
        "{e}"
    );
    let e = err(
        "",
        "    client-certificate: pki/client.key\n    client-key: pki/client.key\n",
    );
    assert!(
        e.contains("`client-certificate` file `/k/pki/client.key` holds no PEM certificate"),
        "{e}"
    );
    let e = err(
        "",
        "    client-certificate: pki/client.crt\n    client-key: pki/none.key\n",
    );
    assert!(e.ends_with("`client-key` file `/k/pki/none.key` cannot be read"), "{e}");
}

#[test]
fn certificate_combines_with_a_token() {
    let config = resolve(
        "",
        "    client-certificate: pki/client.crt\n    client-key: pki/client.key\n    token: t\n",
    )
    .unwrap();
    assert!(matches!(config.auth, AuthConfig::Token(_)));
    assert!(config.tls.client_cert_pem.is_some());
}

const EXEC_V1: &str = "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ./bin/plugin\n      args: [get-token]\n      env: [{name: A, value: b}]\n      installHint: install it\n      provideClusterInfo: true\n      interactiveMode: Never\n";

#[test]
fn exec_plugin_fields() {
    let config = resolve(
        "    certificate-authority: pki/ca.crt\n    tls-server-name: api\n",
        EXEC_V1,
    )
    .unwrap();
    let AuthConfig::Exec(exec) = config.auth else {
        panic!("{:?}", config.auth)
    };
    assert_eq!(exec.api_version, "client.authentication.k8s.io/v1");
    assert_eq!(exec.command, "/k/bin/plugin");
    assert_eq!(exec.args, ["get-token"]);
    assert_eq!(exec.env, [("A".to_owned(), "b".to_owned())]);
    assert_eq!(exec.install_hint.as_deref(), Some("install it"));
    assert!(exec.provide_cluster_info);
    assert_eq!(exec.interactive_mode.as_deref(), Some("Never"));
    assert_eq!(exec.cluster_server, "https://k.example:6443");
    assert_eq!(exec.cluster_ca_data.as_deref(), Some(b64(CA_PEM).as_str()));
    assert_eq!(exec.cluster_server_name.as_deref(), Some("api"));
    assert!(exec.cluster_config.is_none());
}

#[test]
fn exec_gets_the_cluster_exec_extension() {
    let cluster = "    extensions:\n    - name: other\n      extension: {x: 1}\n    - name: client.authentication.k8s.io/exec\n      extension: {audience: ci}\n";
    let AuthConfig::Exec(exec) = resolve(cluster, EXEC_V1).unwrap().auth else {
        panic!()
    };
    assert_eq!(exec.cluster_config.unwrap()["audience"], "ci");
}

#[test]
fn exec_bare_command_stays_a_path_lookup_and_v1beta1_defaults_interactive_mode() {
    let user = "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: aws\n";
    let AuthConfig::Exec(exec) = resolve("", user).unwrap().auth else {
        panic!()
    };
    assert_eq!(exec.command, "aws");
    assert_eq!(exec.interactive_mode.as_deref(), Some("IfAvailable"));
}

#[test]
fn exec_errors() {
    let v1 = "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n";
    let e = err("", v1);
    assert!(
        e.ends_with("`exec.interactiveMode` is not set (required for client.authentication.k8s.io/v1)"),
        "{e}"
    );
    let e = err("", &format!("{v1}      interactiveMode: Sometimes\n"));
    assert!(
        e.ends_with("`exec.interactiveMode` is not one of Never, IfAvailable, Always"),
        "{e}"
    );
    let e = err(
        "",
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1alpha1\n      command: aws\n",
    );
    assert!(e.contains("`exec.apiVersion` is not supported"), "{e}");
    let e = err("", "    exec:\n      command: aws\n");
    assert_eq!(e, "kubeconfig `/k/config`: user `u`: `exec.apiVersion` is not set");
    let e = err(
        "",
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n",
    );
    assert_eq!(e, "kubeconfig `/k/config`: user `u`: `exec.command` is not set");
    let e = err(
        "",
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: a\n      env: [{value: x}]\n",
    );
    assert!(e.ends_with("`exec.env` has an entry without a name"), "{e}");
}

#[test]
fn exec_stands_aside_for_token_basic_or_certificate() {
    let with_token = format!("{EXEC_V1}    token: t\n");
    assert!(matches!(resolve("", &with_token).unwrap().auth, AuthConfig::Token(_)));
    let with_cert = format!("{EXEC_V1}    client-certificate: pki/client.crt\n    client-key: pki/client.key\n");
    assert!(matches!(
        resolve("", &with_cert).unwrap().auth,
        AuthConfig::ClientCertificate
    ));
}

#[test]
fn auth_provider_is_not_supported() {
    let e = err(
        "",
        "    auth-provider:\n      name: gcp\n      config: {access-token: ya29.secret}\n",
    );
    assert!(
        e.starts_with("kubeconfig `/k/config`: user `u`: `auth-provider` `gcp` is not supported"),
        "{e}"
    );
    assert!(e.contains("gke-gcloud-auth-plugin") && !e.contains("ya29"), "{e}");
}

#[test]
fn resolved_material_builds_a_rustls_client_config_for_every_key_format() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let pairs = [
        (CERT_PEM, RSA_KEY_PEM),
        (EC_CERT_PEM, EC_KEY_PEM),
        (PKCS8_CERT_PEM, PKCS8_KEY_PEM),
    ];
    for (cert, key) in pairs {
        let user = format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(cert),
            b64(key)
        );
        let config = resolve("    certificate-authority: pki/ca.crt\n", &user).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(config.tls.ca_pem.as_deref().unwrap()) {
            roots.add(ca.unwrap()).unwrap();
        }
        let certs: Vec<_> = CertificateDer::pem_slice_iter(config.tls.client_cert_pem.as_deref().unwrap())
            .collect::<Result<_, _>>()
            .unwrap();
        let key_der = PrivateKeyDer::from_pem_slice(config.tls.client_key_pem.unwrap().expose().as_bytes()).unwrap();
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key_der)
            .unwrap_or_else(|e| panic!("rustls refused the key: {e}"));
    }
}

/// `tokenFile: /dev/zero` read 1 GiB before an error; every file a user or cluster names is
/// read under a bound, and the error names the field and the file.
#[test]
fn named_files_are_read_under_a_bound() {
    let token = "t".repeat((crate::config::MAX_TOKEN_BYTES + 1) as usize);
    let pem = "-".repeat((crate::config::MAX_PEM_BYTES + 1) as usize);
    let env = env_with(&kubeconfig("", "    tokenFile: /big/token\n")).file("/big/token", &token);
    let e = resolve_with(&env).unwrap_err();
    assert_eq!(
        e.to_string(),
        "kubeconfig `/k/config`: user `u`: `tokenFile` file `/big/token` holds more than 1 MiB \
         (the limit for this file)"
    );
    // Exactly at the bound is fine.
    let env = env_with(&kubeconfig("", "    tokenFile: /big/token\n")).file("/big/token", &token[1..]);
    assert!(resolve_with(&env).is_ok());

    let user = "    client-certificate: /big/cert\n    client-key: /big/key\n";
    let env = env_with(&kubeconfig("", user))
        .file("/big/cert", &pem)
        .file("/big/key", RSA_KEY_PEM);
    let e = resolve_with(&env).unwrap_err().to_string();
    assert!(
        e.ends_with("`client-certificate` file `/big/cert` holds more than 4 MiB (the limit for this file)"),
        "{e}"
    );
    let env = env_with(&kubeconfig("", user))
        .file("/big/cert", CERT_PEM)
        .file("/big/key", &pem);
    let e = resolve_with(&env).unwrap_err().to_string();
    assert!(
        e.ends_with("`client-key` file `/big/key` holds more than 4 MiB (the limit for this file)"),
        "{e}"
    );
    let env = env_with(&kubeconfig("    certificate-authority: /big/ca\n", "")).file("/big/ca", &pem);
    let e = resolve_with(&env).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "cluster `cl`: `certificate-authority` file `/big/ca` holds more than 4 MiB (the limit for this file)"
        ),
        "{e}"
    );
}
