//! A rustls client-certificate resolver over an exec plugin's certificate: each TLS handshake
//! asks [`Credentials`] for the current certificate and key, so a renewed certificate is used
//! by the next connection. Knows nothing of HTTP or of running the plugin.

use std::fmt;
use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::{ClientIdentity, Credentials};

/// Give it to `ClientConfig::builder()...with_client_cert_resolver(..)`. Call
/// `credentials.authorization()` before requests so the plugin has run.
pub struct ExecCertResolver {
    credentials: Credentials,
}

impl ExecCertResolver {
    pub fn new(credentials: Credentials) -> ExecCertResolver {
        ExecCertResolver { credentials }
    }
}

impl fmt::Debug for ExecCertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExecCertResolver")
    }
}

/// Builds the signing material; `None` when the PEM is unusable (checked when the plugin
/// answered, so this is not expected).
pub fn certified_key(identity: &ClientIdentity) -> Option<CertifiedKey> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&identity.certificate_pem)
        .collect::<Result<_, _>>()
        .ok()?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.expose().as_bytes()).ok()?;
    let key = rustls::crypto::ring::sign::any_supported_type(&key).ok()?;
    Some(CertifiedKey::new(certs, key))
}

impl ResolvesClientCert for ExecCertResolver {
    fn resolve(&self, _hints: &[&[u8]], schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        let key = certified_key(&self.credentials.exec_client_identity()?)?;
        key.key.choose_scheme(schemes)?;
        Some(Arc::new(key))
    }

    fn has_certs(&self) -> bool {
        true
    }
}
