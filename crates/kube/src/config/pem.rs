//! TLS material as kubeconfigs carry it: base64 `-data` fields, PEM certificate bundles and
//! private keys, checked with the same parser the transport uses (rustls' pki-types), so a key
//! that loads here loads there. Knows nothing of where the bytes came from.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Decodes a `-data` field; whitespace and line breaks are ignored as Go's decoder does.
pub fn decode_base64(data: &str) -> Option<Vec<u8>> {
    let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

/// At least one PEM certificate, and every certificate block well formed.
pub fn check_certificates(pem: &[u8]) -> Result<(), String> {
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        // The parser's error may quote a line of the file: it is not kept.
        cert.map_err(|_| "holds a malformed PEM certificate".to_owned())?;
        count += 1;
    }
    if count == 0 {
        return Err("holds no PEM certificate".into());
    }
    Ok(())
}

/// A private key rustls can use: PKCS#1 (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or
/// PKCS#8 (`PRIVATE KEY`). The parser's own error is not kept: it could quote key bytes.
pub fn check_key(pem: &[u8]) -> Result<(), &'static str> {
    PrivateKeyDer::from_pem_slice(pem)
        .map(drop)
        .map_err(|_| "holds no PEM private key (want RSA, EC or PKCS#8)")
}

/// The key signs for the certificate's public key, as rustls checks when the transport loads
/// them (`CertifiedKey::from_der`); failing here names the kubeconfig field instead.
pub fn check_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), &'static str> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| "holds a malformed PEM certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| "holds no PEM private key")?;
    let provider = rustls::crypto::ring::default_provider();
    match rustls::sign::CertifiedKey::from_der(certs, key, &provider) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => Err("does not match the client certificate"),
        Err(rustls::Error::InvalidCertificate(_)) => {
            Err("belongs to a client certificate rustls cannot use (want X.509 v3)")
        }
        Err(_) => Err("is a key type rustls cannot sign with"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testenv::{
        CA_PEM, CERT_PEM, EC_CERT_PEM, EC_KEY_PEM, PKCS8_CERT_PEM, PKCS8_KEY_PEM, RSA_KEY_PEM, b64,
    };

    #[test]
    fn base64_ignores_line_breaks_and_rejects_garbage() {
        let wrapped: String = b64(CA_PEM)
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert_eq!(decode_base64(&wrapped).unwrap(), CA_PEM.as_bytes());
        assert!(decode_base64("not base64!").is_none());
    }

    #[test]
    fn certificates_and_keys() {
        assert!(check_certificates(format!("{CA_PEM}{CERT_PEM}").as_bytes()).is_ok());
        assert!(check_certificates(RSA_KEY_PEM.as_bytes()).is_err());
        assert!(check_certificates(b"").is_err());
        for key in [RSA_KEY_PEM, EC_KEY_PEM, PKCS8_KEY_PEM] {
            assert!(check_key(key.as_bytes()).is_ok(), "{key}");
        }
        assert!(check_key(CERT_PEM.as_bytes()).is_err());
    }

    #[test]
    fn pairs_must_match() {
        assert_eq!(check_pair(CERT_PEM.as_bytes(), RSA_KEY_PEM.as_bytes()), Ok(()));
        assert_eq!(check_pair(EC_CERT_PEM.as_bytes(), EC_KEY_PEM.as_bytes()), Ok(()));
        assert_eq!(check_pair(PKCS8_CERT_PEM.as_bytes(), PKCS8_KEY_PEM.as_bytes()), Ok(()));
        assert_eq!(
            check_pair(CERT_PEM.as_bytes(), EC_KEY_PEM.as_bytes()),
            Err("does not match the client certificate")
        );
    }
}
