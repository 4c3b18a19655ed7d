//! The simulated cluster's PKI, made fresh at every start: a CA, a server certificate for
//! 127.0.0.1, ::1 and localhost, and client certificates on demand (CN = user, O = group, as
//! the apiserver reads them). Also builds the rustls server config. No files, no I/O.

use std::io;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// The CA and server material. Key PEMs stay inside the sim.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    pub ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
}

fn err(e: rcgen::Error) -> io::Error {
    io::Error::other(format!("generate the simulated cluster's certificates: {e}"))
}

impl Pki {
    pub fn generate() -> io::Result<Pki> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "woodpecker-sim-ca");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().map_err(err)?).map_err(err)?;
        let ca_pem = ca.pem();

        let mut params = CertificateParams::new(vec![
            "127.0.0.1".to_string(),
            "::1".to_string(),
            "localhost".to_string(),
        ])
        .map_err(err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "kube-apiserver");
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &ca).map_err(err)?;
        Ok(Pki {
            ca,
            ca_pem,
            server_cert_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
        })
    }

    /// A client certificate and key (PEM) for `user` in `groups`, signed by the CA.
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> io::Result<(String, String)> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, user);
        for g in groups {
            dn.push(DnType::OrganizationName, *g);
        }
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &self.ca).map_err(err)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// TLS 1.2/1.3 with ALPN h2 + http/1.1; client certificates are verified against the CA
    /// when offered and optional otherwise (bearer tokens are the other way in).
    pub fn server_config(&self) -> io::Result<rustls::ServerConfig> {
        let bad = |e: &dyn std::fmt::Display| io::Error::other(format!("build the TLS server config: {e}"));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).map_err(|e| bad(&e))?;
        roots.add(ca).map_err(|e| bad(&e))?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| bad(&e))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(self.server_cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| bad(&e))?;
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes()).map_err(|e| bad(&e))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| bad(&e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// The subject CN of a DER certificate, found by its OID (2.5.4.3) without an ASN.1 parser:
/// enough for the certificates this module issues.
pub fn common_name(der: &[u8]) -> Option<String> {
    const CN_OID: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
    // The issuer's CN comes first in the TBS certificate, the subject's second.
    let mut found = None;
    let mut i = 0;
    while i + CN_OID.len() + 2 <= der.len() {
        if &der[i..i + CN_OID.len()] == CN_OID {
            let at = i + CN_OID.len();
            let len = der[at + 1] as usize;
            if let Some(v) = der.get(at + 2..at + 2 + len) {
                found = Some(String::from_utf8_lossy(v).into_owned());
            }
            i = at;
        } else {
            i += 1;
        }
    }
    found
}
