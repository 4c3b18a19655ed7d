//! The rustls client configuration for the gRPC connection: system roots (or a given CA file),
//! or, when verification is turned off, a verifier that checks signatures but trusts any
//! certificate. Knows nothing of gRPC.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use kube::tls::{AcceptAnyCert, SYSTEM_BUNDLES as BUNDLES};

#[derive(Debug)]
pub enum TlsError {
    ReadRoots {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    NoRoots,
    Rustls(rustls::Error),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::ReadRoots { path, .. } => write!(f, "read CA certificates from {}", path.display()),
            TlsError::NoRoots => write!(
                f,
                "no CA certificates found (looked at SSL_CERT_FILE and {}); set SSL_CERT_FILE or WOODPECKER_GRPC_SKIP_VERIFY=true",
                BUNDLES.join(", ")
            ),
            TlsError::Rustls(_) => write!(f, "build the TLS configuration"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::ReadRoots { source, .. } => Some(source),
            TlsError::Rustls(e) => Some(e),
            TlsError::NoRoots => None,
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `verify`: check the server certificate against `ca_file` (or the system bundle).
pub fn client_config(verify: bool, ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?;
    let config = if verify {
        builder.with_root_certificates(roots(ca_file)?).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert::new(&provider())))
            .with_no_client_auth()
    };
    Ok(config)
}

fn roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let candidates: Vec<PathBuf> = match ca_file.map(Path::to_path_buf).or(from_env) {
        Some(p) => vec![p],
        None => BUNDLES
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.exists())
            .take(1)
            .collect(),
    };
    for path in candidates {
        let certs = CertificateDer::pem_file_iter(&path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|source| TlsError::ReadRoots {
                path: path.clone(),
                source,
            })?;
        // Bundles hold the odd certificate webpki rejects; skip those, as Go does.
        store.add_parsable_certificates(certs);
    }
    if store.is_empty() {
        return Err(TlsError::NoRoots);
    }
    Ok(store)
}
