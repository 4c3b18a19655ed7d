//! The client's TLS edges against a tiny HTTPS server of our own (the sim verifies client
//! certificates with webpki, which refuses X.509 v1): the client certificate kubectl would
//! send, and verification failures that are final.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Secret;
use kube::config::{AuthConfig, Config, TlsConfig};
use rustls::DigitallySignedStruct;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{NS, Pod};

const NOT_FOUND: &str = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#;

/// Serves `404 NotFound` to every HTTP/1.1 request over TLS with `config`; returns the address.
pub async fn serve(config: rustls::ServerConfig) -> SocketAddr {
    serve_counted(config).await.0
}

/// [`serve`], also counting the TCP connections accepted.
pub async fn serve_counted(mut config: rustls::ServerConfig) -> (SocketAddr, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                loop {
                    let Ok(b) = tls.read_u8().await else {
                        return;
                    };
                    head.push(b);
                    if head.ends_with(b"\r\n\r\n") {
                        head.clear();
                        let reply = format!(
                            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{NOT_FOUND}",
                            NOT_FOUND.len()
                        );
                        if tls.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, accepted)
}

/// A server certificate for 127.0.0.1 (self-signed: it is its own CA), with its PEM.
pub fn server_identity(params: rcgen::CertificateParams) -> (CertificateDer<'static>, PrivateKeyDer<'static>, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let der = CertificateDer::from(cert.der().to_vec());
    let pkey = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    (der, pkey, cert.pem())
}

pub fn localhost_params() -> rcgen::CertificateParams {
    rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap()
}

/// A config for `addr` trusting `ca_pem`.
pub fn config_for(addr: SocketAddr, ca_pem: &str, ca_source: &str) -> Config {
    Config {
        server: format!("https://{addr}").parse().unwrap(),
        namespace: NS.into(),
        tls: TlsConfig {
            ca_pem: Some(ca_pem.as_bytes().to_vec()),
            ca_source: Some(ca_source.into()),
            ..TlsConfig::default()
        },
        proxy_url: None,
        auth: AuthConfig::None,
        impersonate: Default::default(),
        origin: Default::default(),
    }
}

/// Asks every client for a certificate, records the one it got, and checks the handshake
/// signature by hand against that certificate's public key (webpki would refuse a v1
/// certificate before looking at the signature).
#[derive(Debug, Default)]
struct RecordingVerifier {
    seen: Mutex<Vec<Vec<u8>>>,
}

impl ClientCertVerifier for RecordingVerifier {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.seen.lock().unwrap().push(end_entity.to_vec());
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // SubjectPublicKeyInfo ::= SEQUENCE { algorithm SEQUENCE, subjectPublicKey BIT STRING }
        let spki = kube::config::pem::subject_public_key_info(cert).ok_or(rustls::Error::General("no spki".into()))?;
        let alg_len = usize::from(spki[3]);
        let bits = &spki[2 + 2 + alg_len..];
        let point = &bits[3..]; // BIT STRING tag, length, unused-bits byte
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
            .verify(message, dss.signature())
            .map_err(|_| rustls::Error::General("bad signature".into()))?;
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        vec![rustls::SignatureScheme::ECDSA_NISTP256_SHA256]
    }
}

/// `openssl x509 -req` without extensions makes an X.509 version 1 certificate; kubectl and
/// the apiserver accept it. We refused it ("rustls cannot use (want X.509 v3)"); now it is
/// sent as kubectl sends it, and the handshake is signed with its key.
#[tokio::test]
async fn an_x509_v1_client_certificate_is_sent_as_kubectl_sends_it() {
    let pki = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kubeconfigs/pki");
    let cert_pem = std::fs::read(pki.join("client-v1.crt")).unwrap();
    let key_pem = std::fs::read_to_string(pki.join("client-v1.key")).unwrap();
    let v1_der = CertificateDer::pem_slice_iter(&cert_pem).next().unwrap().unwrap();

    let (server_cert, server_key, server_pem) = server_identity(localhost_params());
    let verifier = Arc::new(RecordingVerifier::default());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(vec![server_cert], server_key)
        .unwrap();
    let addr = serve(config).await;

    let mut config = config_for(addr, &server_pem, "the test server's certificate");
    config.auth = AuthConfig::ClientCertificate;
    config.tls.client_cert_pem = Some(cert_pem.clone());
    config.tls.client_key_pem = Some(Secret::new(key_pem));
    let pods: kube::Api<Pod> = kube::Api::namespaced(kube::Client::new(config).unwrap(), NS);
    assert!(pods.get_opt("x").await.unwrap().is_none());
    assert_eq!(verifier.seen.lock().unwrap().as_slice(), [v1_der.to_vec()]);
}

fn plain_server_config(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> rustls::ServerConfig {
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap()
}

/// With a wrong CA, `exec` took 39 s to fail: the cleanup's GETs retried a certificate
/// verification failure ten times with backoff. It is final now: one connection, at once,
/// with the reason and which CA was used (never its bytes).
#[tokio::test]
async fn a_tls_verification_failure_is_final_and_says_why_and_which_ca() {
    let named = |cn: &str| {
        let mut p = localhost_params();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p
    };
    let (cert, key, pem) = server_identity(named("the server's own CA"));
    let (_, _, other_pem) = server_identity(named("some other CA"));
    let mut wrong_name = rcgen::CertificateParams::new(vec!["kubernetes.invalid".to_string()]).unwrap();
    wrong_name.distinguished_name = rcgen::DistinguishedName::new();
    let (name_cert, name_key, name_pem) = server_identity(wrong_name);
    let mut old = localhost_params();
    old.not_before = rcgen::date_time_ymd(2001, 1, 1);
    old.not_after = rcgen::date_time_ymd(2002, 1, 1);
    let (old_cert, old_key, old_pem) = server_identity(old);

    let cases = [
        (
            plain_server_config(cert, key),
            other_pem.clone(),
            "/etc/kube/ca.crt",
            "signed by an unknown certificate authority",
            "(trusted CA: `/etc/kube/ca.crt`)",
        ),
        (
            plain_server_config(name_cert, name_key),
            name_pem,
            "certificate-authority-data",
            "not valid for the name `127.0.0.1`",
            "(trusted CA: inline certificate-authority-data)",
        ),
        (
            plain_server_config(old_cert, old_key),
            old_pem,
            "certificate-authority-data",
            "has expired",
            "(trusted CA: inline certificate-authority-data)",
        ),
    ];
    assert_ne!(pem, other_pem);
    for (server, ca, source, reason, trust) in cases {
        let (addr, accepted) = serve_counted(server).await;
        // The default options: ten attempts with backoff from 200 ms.
        let pods: kube::Api<Pod> = kube::Api::namespaced(kube::Client::new(config_for(addr, &ca, source)).unwrap(), NS);
        let start = Instant::now();
        let err = pods.get("x").await.unwrap_err();
        let elapsed = start.elapsed();
        let text = err.to_string();
        assert!(err.is_tls() && !err.is_transport(), "{text}");
        assert!(text.contains(reason) && text.contains(trust), "{text}");
        assert!(text.contains("not retried"), "{text}");
        assert!(
            !text.contains("BEGIN CERTIFICATE") && !text.contains(&ca[30..60]),
            "{text}"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "{reason}: one connection, no retry");
        assert!(elapsed < Duration::from_secs(2), "{reason}: {elapsed:?}");
        // A log, on a connection of its own spoken without hyper, fails the same way.
        let err = pods.log_stream("x", &kube::LogParams::default()).await.unwrap_err();
        let text = err.to_string();
        assert!(err.is_tls() && text.contains(reason) && text.contains(trust), "{text}");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "{reason}: one more connection, no retry"
        );
    }
}

/// Serves one log reply over TLS with `config`: `lines` in chunked writes of uneven sizes
/// (many records), with a TLS 1.3 KeyUpdate (asking for ours) halfway when `key_update`, then
/// close_notify.
async fn serve_log(mut config: rustls::ServerConfig, lines: Vec<String>, key_update: bool) -> SocketAddr {
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tls.read_u8().await.unwrap());
        }
        tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        let mut at = 0;
        for (i, size) in [1usize, 70, 5000, 16384, 40000, 3, 20000].iter().cycle().enumerate() {
            if at == text.len() {
                break;
            }
            let end = (at + size).min(text.len());
            let piece = &text[at..end];
            at = end;
            tls.write_all(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes())
                .await
                .unwrap();
            if key_update && i == 20 {
                tls.get_mut().1.refresh_traffic_keys().unwrap();
            }
        }
        tls.write_all(b"0\r\n\r\n").await.unwrap();
        tls.shutdown().await.unwrap();
        // The client's answer to the KeyUpdate, then its end.
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest).await;
    });
    addr
}

/// Logs come on a connection spoken with rustls' unbuffered API (kube's `h1`): a long reply
/// over TLS 1.2 and over TLS 1.3 with a KeyUpdate from the server midway (the client must
/// answer it while it reads) arrives whole.
#[tokio::test]
async fn a_log_arrives_whole_over_tls_12_and_13_across_a_key_update() {
    let lines: Vec<String> = (0..20_000)
        .map(|i| format!("line {i:05} of a long log over TLS"))
        .collect();
    for (version, key_update) in [(&rustls::version::TLS12, false), (&rustls::version::TLS13, true)] {
        let (cert, key, pem) = server_identity(localhost_params());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let addr = serve_log(config, lines.clone(), key_update).await;
        let pods: kube::Api<Pod> = kube::Api::namespaced(
            kube::Client::new(config_for(addr, &pem, "the test server's certificate")).unwrap(),
            NS,
        );
        let mut stream = pods.log_stream("p", &kube::LogParams::default()).await.unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .unwrap()
            .unwrap()
        {
            got.extend_from_slice(&chunk);
        }
        let got = String::from_utf8(got).unwrap();
        assert_eq!(got.lines().count(), lines.len(), "{version:?}");
        assert!(got.lines().eq(lines.iter().map(String::as_str)), "{version:?}");
    }
}

/// A certificate chain longer than a TLS record (here one certificate of 40 KB, its names)
/// comes in a handshake message spanning records, which the log connection joins in its buffer
/// before the buffer returns to a record's size.
#[tokio::test]
async fn a_certificate_longer_than_a_record_is_taken_on_a_log_connection() {
    let mut names = vec!["127.0.0.1".to_string()];
    names.extend((0..1500).map(|i| format!("name-{i:04}.cluster.example.invalid")));
    let (cert, key, pem) = server_identity(rcgen::CertificateParams::new(names).unwrap());
    assert!(cert.len() > 40_000, "{}", cert.len());
    let addr = serve(plain_server_config(cert, key)).await;
    let pods: kube::Api<Pod> = kube::Api::namespaced(
        kube::Client::new(config_for(addr, &pem, "the test server's certificate")).unwrap(),
        NS,
    );
    let err = pods.log_stream("x", &kube::LogParams::default()).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}
