//! The rustls client configuration for one apiserver: trust (cluster CA, system bundle, or
//! insecure-skip-tls-verify), and the client identity for mutual TLS. Uses the ring provider
//! only. Knows nothing of HTTP.
//!
//! Servers given by IP address work: rustls checks IP SANs (`ServerName::IpAddress`).

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::config::TlsConfig;
use super::error::Error;

/// System CA bundles, tried in order when no CA is configured (Debian, RHEL/Fedora, SUSE,
/// Alpine/macOS): where Go's crypto/x509 looks too. The agent's gRPC connection uses them as well.
pub const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn setup(what: impl Into<String>, source: impl Into<super::error::BoxError>) -> Error {
    Error::Setup {
        what: what.into(),
        source: Some(source.into()),
    }
}

/// Builds the client TLS configuration. `alpn` is left empty; the connector sets it.
/// `exec_identity` is the exec plugin's certificate resolver, used when the kubeconfig itself
/// names no client certificate (the plugin may hand one out, renewed per handshake).
pub fn client_config(
    tls: &TlsConfig,
    exec_identity: Option<Arc<dyn ResolvesClientCert>>,
) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| setup("choosing TLS versions", e))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert::new(&provider)))
    } else {
        builder.with_root_certificates(roots(tls)?)
    };
    match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| setup("reading the client certificate PEM", e))?;
            if chain.is_empty() {
                return Err(setup(
                    "reading the client certificate PEM",
                    "no CERTIFICATE block found",
                ));
            }
            // The error text of a key parse never contains the key.
            let key = PrivateKeyDer::from_pem_slice(key.expose().as_bytes())
                .map_err(|e| setup("reading the client key PEM", e))?;
            let key = provider
                .key_provider
                .load_private_key(key)
                .map_err(|e| setup("using the client key", e))?;
            // Not `with_client_auth_cert`: it re-validates our own certificate with webpki,
            // which refuses X.509 v1 (kubectl sends those). The pair was checked at load
            // (`config::pem::check_pair`); the apiserver judges the certificate.
            let identity = rustls::sign::CertifiedKey::new(chain, key);
            Ok(builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(identity))))
        }
        (None, None) => Ok(match exec_identity {
            Some(resolver) => builder.with_client_cert_resolver(resolver),
            None => builder.with_no_client_auth(),
        }),
        _ => Err(Error::Setup {
            what: "a client certificate needs both the certificate and the key".into(),
            source: None,
        }),
    }
}

fn roots(tls: &TlsConfig) -> Result<RootCertStore, Error> {
    let (pem, source) = match &tls.ca_pem {
        Some(pem) => (
            pem.clone(),
            tls.ca_source.clone().unwrap_or_else(|| "the cluster CA".into()),
        ),
        None => system_bundle()?,
    };
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| setup(format!("reading CA certificates from {source}"), e))?;
        store
            .add(cert)
            .map_err(|e| setup(format!("adding a CA certificate from {source}"), e))?;
    }
    if store.is_empty() {
        return Err(setup(
            format!("reading CA certificates from {source}"),
            "no CERTIFICATE block found",
        ));
    }
    Ok(store)
}

fn system_bundle() -> Result<(Vec<u8>, String), Error> {
    for path in SYSTEM_BUNDLES {
        if let Ok(pem) = std::fs::read(path) {
            return Ok((pem, (*path).to_string()));
        }
    }
    Err(Error::Setup {
        what: format!(
            "no certificate-authority is configured and no system CA bundle was found ({}); \
             set certificate-authority(-data) or insecure-skip-tls-verify",
            SYSTEM_BUNDLES.join(", ")
        ),
        source: None,
    })
}

/// `insecure-skip-tls-verify` (and the agent's WOODPECKER_GRPC_VERIFY=false): any certificate
/// is accepted, but the handshake signatures are still checked against the presented
/// certificate, so the session is at least bound to it.
#[derive(Debug)]
pub struct AcceptAnyCert(WebPkiSupportedAlgorithms);

impl AcceptAnyCert {
    pub fn new(provider: &rustls::crypto::CryptoProvider) -> Self {
        AcceptAnyCert(provider.signature_verification_algorithms)
    }
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Why a TLS handshake failed for good, when it did: the server's certificate failed
/// verification, or the server refused ours. `None` for everything else (refused
/// connections, resets, timeouts), which may pass on a retry. Walks the error chain,
/// looking inside `io::Error`s (hyper-rustls wraps rustls' error in one).
pub fn final_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::{AlertDescription as A, CertificateError as C};
    let mut next = Some(err);
    while let Some(e) = next {
        let io_inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        let rustls_err = e
            .downcast_ref::<rustls::Error>()
            .or_else(|| io_inner.and_then(|i| i.downcast_ref::<rustls::Error>()));
        match rustls_err {
            Some(rustls::Error::InvalidCertificate(cert)) => {
                return Some(match cert {
                    C::UnknownIssuer => "the server's certificate is signed by an unknown certificate authority".into(),
                    C::NotValidForNameContext { expected, .. } => {
                        format!(
                            "the server's certificate is not valid for the name `{}`",
                            expected.to_str()
                        )
                    }
                    C::NotValidForName => "the server's certificate is not valid for the server's name".into(),
                    C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired".into(),
                    C::NotValidYet | C::NotValidYetContext { .. } => "the server's certificate is not valid yet".into(),
                    C::Revoked => "the server's certificate is revoked".into(),
                    C::BadSignature => "the server's certificate has a bad signature".into(),
                    C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                        "the server's certificate is not for TLS server authentication".into()
                    }
                    other => format!("the server's certificate failed verification ({other:?})"),
                });
            }
            Some(rustls::Error::AlertReceived(
                alert @ (A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::CertificateRequired
                | A::AccessDenied),
            )) => return Some(format!("the server refused our client certificate (alert {alert:?})")),
            _ => {}
        }
        next = io_inner.or_else(|| e.source());
    }
    None
}

/// The name checked against the server certificate when `tls-server-name` is set.
pub fn server_name(name: &str) -> Result<ServerName<'static>, Error> {
    let trimmed = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(trimmed.to_string()).map_err(|e| setup(format!("tls-server-name {name:?}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ca_pem_names_its_source() {
        let tls = TlsConfig {
            ca_pem: Some(b"not a pem".to_vec()),
            ca_source: Some("/tmp/ca.crt".into()),
            ..Default::default()
        };
        let err = client_config(&tls, None).unwrap_err();
        assert!(err.to_string().contains("/tmp/ca.crt"), "{err}");
    }

    #[test]
    fn insecure_needs_no_ca_and_half_an_identity_is_refused() {
        let tls = TlsConfig {
            insecure_skip_verify: true,
            ..Default::default()
        };
        assert!(client_config(&tls, None).is_ok());
        let half = TlsConfig {
            insecure_skip_verify: true,
            client_cert_pem: Some(b"x".to_vec()),
            ..Default::default()
        };
        assert!(client_config(&half, None).is_err());
    }

    #[test]
    fn server_names_accept_ips_and_dns() {
        assert!(matches!(server_name("10.0.0.1").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(server_name("[::1]").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(
            server_name("kubernetes.default.svc").unwrap(),
            ServerName::DnsName(_)
        ));
    }
}
