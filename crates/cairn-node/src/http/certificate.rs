//! The certificate the page on the organisation's network is served with: the admin's own
//! files, or one this node makes on first start (`web/certificate.pem`, its key
//! `web/certificate.key` at 0600), made again only when the names it must cover change. Also
//! the fingerprint members check it by: SHA-256 of the certificate, as browsers show it.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::Error;

/// A TLS setup ready to serve, and the fingerprint of its certificate.
#[derive(Debug, Clone)]
pub struct Served {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the (first) certificate, as `AB:CD:…`.
    pub fingerprint: String,
}

/// The node's own certificate in `dir`, covering `names` (host names and IP addresses):
/// reused while it covers the same names, made anew otherwise.
pub fn own(dir: &Path, names: &[String], org_name: &str) -> Result<Served, Error> {
    let (certificate, key, listed) = (
        dir.join("certificate.pem"),
        dir.join("certificate.key"),
        dir.join("certificate.names"),
    );
    let wanted = names.join("\n");
    let same_names = fs::read_to_string(&listed).is_ok_and(|text| text.trim() == wanted);
    if !(same_names && certificate.exists() && key.exists()) {
        // Gone first, so that a crash while making the pair never leaves old names beside a
        // new key, or a new certificate beside an old key.
        let _ = fs::remove_file(&listed);
        make(&certificate, &key, names, org_name)?;
        super::web::accounts::write_private(&listed, &format!("{wanted}\n"))?;
        tracing::info!(path = %certificate.display(), names = %names.join(", "), "made a certificate for the page");
    }
    from_files(&certificate, &key)
}

/// The admin's own certificate chain and key (PEM files).
pub fn from_files(certificate: &Path, key_path: &Path) -> Result<Served, Error> {
    let unreadable = |path: &Path, err: &dyn std::fmt::Display| {
        Error::BadRequest(format!(
            "could not read {} ({err}); it must be a PEM file (see docs/operating.md, \"Serving the page to your organisation\")",
            path.display()
        ))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .map_err(|err| unreadable(certificate, &err))?
        .collect::<Result<_, _>>()
        .map_err(|err| unreadable(certificate, &err))?;
    let first = chain
        .first()
        .ok_or_else(|| unreadable(certificate, &"no certificate in it"))?;
    let fingerprint = fingerprint(first);
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|err| unreadable(key_path, &err))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| Error::Task(format!("TLS setup failed: {err}")))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|err| {
        Error::BadRequest(format!(
            "{} and {} do not make a usable certificate and key ({err}); give the matching pair, or, for the node's own, delete web/certificate.* in the home and restart to make a new one",
            certificate.display(),
            key_path.display()
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Served {
        config: Arc::new(config),
        fingerprint,
    })
}

/// SHA-256 of a certificate, as browsers show it: `AB:CD:…`.
pub fn fingerprint(certificate: &[u8]) -> String {
    Sha256::digest(certificate)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A self-signed certificate for `names`, valid from last year for ten years.
fn make(
    certificate: &Path,
    key_path: &Path,
    names: &[String],
    org_name: &str,
) -> Result<(), Error> {
    let failed = |err: rcgen::Error| Error::Task(format!("could not make a certificate: {err}"));
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|err| {
        Error::BadRequest(format!(
            "the page's names {names:?} cannot go in a certificate ({err}); use host names and IP addresses"
        ))
    })?;
    let mut subject = rcgen::DistinguishedName::new();
    let common_name: String = format!("Cairn page of {org_name}")
        .chars()
        .take(64)
        .collect();
    subject.push(rcgen::DnType::CommonName, common_name);
    params.distinguished_name = subject;
    let year = 1970
        + i32::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs() / 31_556_952),
        )
        .unwrap_or(0);
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let made = params.self_signed(&key).map_err(failed)?;
    super::web::accounts::write_private(key_path, &key.serialize_pem())?;
    super::web::accounts::write_private(certificate, &made.pem())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_made_once_and_again_for_new_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        let names = vec!["10.0.0.5".to_string(), "cairn.office".to_string()];
        let first = own(dir.path(), &names, "Riverside Trust").expect("made");
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        let again = own(dir.path(), &names, "Riverside Trust").expect("reused");
        assert_eq!(
            first.fingerprint, again.fingerprint,
            "kept while the names stay"
        );
        let moved = own(dir.path(), &names[..1], "Riverside Trust").expect("made again");
        assert_ne!(first.fingerprint, moved.fingerprint);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(dir.path().join("certificate.key"))
                .expect("key")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let der = CertificateDer::from_pem_file(dir.path().join("certificate.pem")).expect("pem");
        assert_eq!(fingerprint(&der), moved.fingerprint);
    }
}
