//! The relay's own certificate: made on first start, kept in the data directory, reused after.
//! Clients pin its SHA-256 fingerprint (printed at start) unless the relay has a CA-issued certificate,
//! which [`load_files`] reads from PEM files (leaf certificate first, then its intermediates; PKCS#8 key).
//! Both files are written 0600 in a 0700 directory ([`crate::store::create_private_dir`]).
//!
//! [`relay_id`] names the relay as its viewers verify it, for binding technician tokens to it.

use std::fs;
use std::io::Write;
use std::path::Path;

use tether_shared::tls::{Identity, TlsError};
use tether_shared::token::RelayId;

use crate::config::TlsSource;

const CERT_FILE: &str = "relay-cert.der";
const KEY_FILE: &str = "relay-key.der";

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("data directory {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{path}: {message}")]
    Pem { path: String, message: String },
    #[error("{0}")]
    Name(String),
}

/// Load a CA-issued (or any) certificate chain and key from PEM files; the whole chain is served.
pub fn load_files(cert: &Path, key: &Path) -> Result<Identity, CertError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    let pem_err = |path: &Path| {
        let path = path.display().to_string();
        move |e: rustls::pki_types::pem::Error| CertError::Pem { path, message: e.to_string() }
    };
    let mut chain = CertificateDer::pem_file_iter(cert)
        .map_err(pem_err(cert))?
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err(cert))?;
    if chain.is_empty() {
        return Err(CertError::Pem { path: cert.display().to_string(), message: "no certificate".into() });
    }
    let leaf = chain.remove(0);
    let key = PrivatePkcs8KeyDer::from_pem_file(key).map_err(pem_err(key))?;
    Ok(Identity::from_der(leaf, key.secret_pkcs8_der().to_vec()).with_intermediates(chain))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io { path: path.display().to_string(), source }
}

/// Load the certificate from `dir`, or make and store one.
pub fn load_or_create(dir: &Path) -> Result<Identity, CertError> {
    crate::store::create_private_dir(dir).map_err(io_err(dir))?;
    let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    if cert_path.exists() && key_path.exists() {
        let cert = fs::read(&cert_path).map_err(io_err(&cert_path))?;
        let key = fs::read(&key_path).map_err(io_err(&key_path))?;
        return Ok(Identity::from_der(cert, key));
    }
    let identity = Identity::generate(&["localhost", "tether-relay"])?;
    write_private(&key_path, identity.key_der())?;
    write_private(&cert_path, identity.cert.as_ref())?;
    Ok(identity)
}

/// The relay as its viewers verify it: the fingerprint of its self-signed certificate (made now if the
/// relay never ran), or, with a certificate from files (CA-issued), the DNS name viewers reach it by:
/// `name` if given (it must be one of the certificate's names), else the certificate's only name.
pub fn relay_id(tls: &TlsSource, data_dir: &Path, name: Option<&str>) -> Result<RelayId, CertError> {
    let identity = match tls {
        TlsSource::SelfSigned => {
            let fingerprint = load_or_create(data_dir)?.fingerprint();
            return match name {
                None => Ok(RelayId::Fingerprint(fingerprint)),
                Some(_) => Err(CertError::Name(
                    "a relay with a self-signed certificate is known by its fingerprint, not a name: leave out \
                     --relay-name"
                        .into(),
                )),
            };
        }
        TlsSource::Files { cert, key } => load_files(cert, key)?,
    };
    let cert = webpki::EndEntityCert::try_from(&identity.cert)
        .map_err(|e| CertError::Name(format!("the certificate cannot be read: {e}")))?;
    let chosen = match name {
        Some(name) => name.to_owned(),
        None => {
            let names: Vec<&str> = cert.valid_dns_names().filter(|n| !n.starts_with('*')).collect();
            match names.as_slice() {
                [only] => (*only).to_owned(),
                _ => {
                    return Err(CertError::Name(format!(
                        "the certificate names {names:?}: say which one viewers use with --relay-name"
                    )))
                }
            }
        }
    };
    let server_name = rustls::pki_types::ServerName::try_from(chosen.as_str())
        .map_err(|_| CertError::Name(format!("{chosen:?} is not a DNS name")))?;
    cert.verify_is_valid_for_subject_name(&server_name)
        .map_err(|_| CertError::Name(format!("the relay's certificate is not valid for {chosen:?}")))?;
    RelayId::parse(&chosen).ok_or_else(|| CertError::Name(format!("{chosen:?} is not a DNS name")))
}

/// Write a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_is_kept_across_restarts() {
        let dir = std::env::temp_dir().join(format!("tether-cert-test-{}", std::process::id()));
        let first = load_or_create(&dir).expect("create").fingerprint();
        let second = load_or_create(&dir).expect("load").fingerprint();
        assert_eq!(first, second);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_relay_is_named_by_its_fingerprint_or_its_certificate_name() {
        let dir = tempfile::tempdir().expect("dir");
        let own = relay_id(&TlsSource::SelfSigned, dir.path(), None).expect("id");
        let fp = load_or_create(dir.path()).expect("load").fingerprint();
        assert_eq!(own, RelayId::Fingerprint(fp));
        assert!(relay_id(&TlsSource::SelfSigned, dir.path(), Some("relay.example.org")).is_err());

        let made = rcgen::generate_simple_self_signed(vec!["relay.example.org".to_string()]).expect("cert");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        fs::write(&cert, made.cert.pem()).expect("write");
        fs::write(&key, made.signing_key.serialize_pem()).expect("write");
        let files = TlsSource::Files { cert, key };
        let named = RelayId::Name("relay.example.org".into());
        assert_eq!(relay_id(&files, dir.path(), None).expect("the only name"), named);
        assert_eq!(relay_id(&files, dir.path(), Some("relay.example.org")).expect("named"), named);
        assert!(relay_id(&files, dir.path(), Some("rogue.example.org")).is_err(), "not the certificate's");
    }

    #[test]
    fn a_certificate_and_key_load_from_pem_files() {
        let dir = tempfile::tempdir().expect("dir");
        let made = rcgen::generate_simple_self_signed(vec!["relay.example.org".to_string()]).expect("cert");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let other = rcgen::generate_simple_self_signed(vec!["ca.example.org".to_string()]).expect("cert");
        fs::write(&cert, made.cert.pem() + &other.cert.pem()).expect("write");
        fs::write(&key, made.signing_key.serialize_pem()).expect("write");
        let identity = load_files(&cert, &key).expect("loads");
        assert_eq!(identity.fingerprint(), tether_shared::tls::Fingerprint::of(made.cert.der()));
        assert!(load_files(&key, &key).is_err(), "a key is not a certificate");
    }
}
