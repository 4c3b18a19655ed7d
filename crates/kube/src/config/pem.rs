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

/// The key signs for the certificate's public key, as Go's `tls.X509KeyPair` checks (kubectl
/// refuses a mismatched pair too); failing here names the kubeconfig field.
///
/// The certificate itself is not validated: it is ours to send, and the apiserver judges it.
/// rustls' own check (`CertifiedKey::from_der`) parses it with webpki, which refuses X.509
/// version 1, what `openssl x509 -req` without extensions makes and kubectl sends; so the
/// public key is found with [`subject_public_key_info`] instead.
pub fn check_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), &'static str> {
    let leaf = CertificateDer::pem_slice_iter(cert_pem)
        .next()
        .ok_or("holds no PEM certificate")?
        .map_err(|_| "holds a malformed PEM certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| "holds no PEM private key")?;
    let signer =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| "is a key type rustls cannot sign with")?;
    let spki = subject_public_key_info(&leaf).ok_or("belongs to a client certificate that is not X.509 DER")?;
    match signer.public_key() {
        Some(public) if public.as_ref() == spki => Ok(()),
        Some(_) => Err("does not match the client certificate"),
        // A key type that cannot say its public key: the server will judge the pair.
        None => Ok(()),
    }
}

/// The `subjectPublicKeyInfo` element (tag and length included) of a DER certificate of any
/// X.509 version: the fields before it are skipped, not read.
pub fn subject_public_key_info(cert_der: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0; // [0] EXPLICIT, absent in version 1
    let (SEQUENCE, certificate, _) = element(cert_der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(content(certificate)?)? else {
        return None;
    };
    let mut rest = content(tbs)?;
    if rest.first() == Some(&VERSION) {
        rest = element(rest)?.2;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        rest = element(rest)?.2;
    }
    match element(rest)? {
        (SEQUENCE, spki, _) => Some(spki),
        _ => None,
    }
}

/// The first DER element of `der`: its tag, the whole element and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (header, len) = header(der)?;
    let end = header.checked_add(len)?;
    Some((der[0], der.get(..end)?, &der[end..]))
}

/// The content of one whole DER element.
fn content(element: &[u8]) -> Option<&[u8]> {
    let (header, _) = header(element)?;
    element.get(header..)
}

/// The header length and content length of the DER element at the start of `der`.
fn header(der: &[u8]) -> Option<(usize, usize)> {
    let first = *der.get(1)?;
    if first < 0x80 {
        return Some((2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let len = der
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((2 + n, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testenv::{
        CA_PEM, CERT_PEM, EC_CERT_PEM, EC_KEY_PEM, PKCS8_CERT_PEM, PKCS8_KEY_PEM, RSA_KEY_PEM, V1_CERT_PEM, V1_KEY_PEM,
        b64,
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
        assert_eq!(
            check_pair(V1_CERT_PEM.as_bytes(), EC_KEY_PEM.as_bytes()),
            Err("does not match the client certificate")
        );
    }

    /// `openssl x509 -req` without extensions makes an X.509 version 1 certificate; kubectl
    /// sends it, and rustls' own pair check refused it ("want X.509 v3").
    #[test]
    fn a_version_1_certificate_pairs_with_its_key() {
        assert!(V1_CERT_PEM.len() > 100);
        let der = CertificateDer::from_pem_slice(V1_CERT_PEM.as_bytes()).unwrap();
        // tbsCertificate starts with the serial number, no [0] version.
        let tbs = element(content(&der).unwrap()).unwrap().1;
        assert_eq!(
            content(tbs).unwrap()[0],
            0x02,
            "tbsCertificate starts with the serial number"
        );
        assert_eq!(check_pair(V1_CERT_PEM.as_bytes(), V1_KEY_PEM.as_bytes()), Ok(()));
        assert!(subject_public_key_info(b"\x30\x03\x02\x01").is_none());
        assert!(subject_public_key_info(&[]).is_none());
    }
}
