//! HTTPS on the stage LAN: the server's certificate, from PEM files or self-signed.
//!
//! A phone gives a page a secure context (service worker, install, screen wake lock)
//! only over https. A band's laptop has no public name, so the usual answer is a
//! certificate made here once, for every LAN address, `<host>.local` and localhost, kept
//! beside the state file and reused on every start, that each phone trusts once (README,
//! "HTTPS on the stage network"). The page offers it for download at `/cert.pem`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Config, TlsConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls: cannot read {path}: {msg}")]
    Read { path: PathBuf, msg: String },
    #[error("tls: cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tls: {path} holds no certificate")]
    NoCert { path: PathBuf },
    #[error("tls: the certificate and key do not go together ({cert}, {key}): {msg}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        msg: String,
    },
    #[error("tls: cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error("cannot listen on {addr} (tls.https): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What the HTTPS listener serves with.
#[derive(Clone)]
pub struct TlsMaterial {
    pub config: Arc<rustls::ServerConfig>,
    /// The certificate file as read (PEM), for `/cert.pem`.
    pub cert_pem: String,
    /// Where it came from (logged at start).
    pub cert_path: PathBuf,
}

/// Loads the certificate and binds the HTTPS listener, when `[tls] https` is set.
pub async fn bind(
    cfg: &Config,
) -> Result<Option<(tokio::net::TcpListener, SocketAddr, TlsMaterial)>, TlsError> {
    let Some(addr) = cfg.tls.https else {
        return Ok(None);
    };
    let state_dir = cfg
        .state
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let lan: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|v| v.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default();
    let names = names_for(&cfg.mdns.host_name, &lan);
    let material = load(&cfg.tls, state_dir, &names)?;
    let bind_err = |source| TlsError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    tracing::info!(cert = %material.cert_path.display(), "https on {local}");
    Ok(Some((listener, local, material)))
}

/// File names of the self-signed pair, beside the state file.
pub const SELF_SIGNED_CERT: &str = "monmix-cert.pem";
pub const SELF_SIGNED_KEY: &str = "monmix-key.pem";

/// Loads the configured pair, or the self-signed one (made on first use). `state_dir`
/// holds the self-signed pair; `names` are the host names and addresses it covers.
pub fn load(cfg: &TlsConfig, state_dir: &Path, names: &[String]) -> Result<TlsMaterial, TlsError> {
    let (cert, key) = if cfg.self_signed {
        let cert = state_dir.join(SELF_SIGNED_CERT);
        let key = state_dir.join(SELF_SIGNED_KEY);
        if !cert.exists() || !key.exists() {
            generate(&cert, &key, names)?;
            tracing::info!(cert = %cert.display(), ?names, "tls: made a self-signed certificate");
        }
        (cert, key)
    } else {
        match (&cfg.cert, &cfg.key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            // Config validation refuses this; a library caller gets a clear error.
            _ => {
                return Err(TlsError::Read {
                    path: PathBuf::from("tls.cert/tls.key"),
                    msg: "not set".into(),
                })
            }
        }
    };
    from_files(&cert, &key)
}

/// The names a self-signed certificate covers: `localhost`, `<host>.local`, the
/// loopback addresses and every address of this machine's interfaces.
pub fn names_for(host_name: &str, lan: &[IpAddr]) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        format!("{}.local", host_name.trim_end_matches('.')),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    for ip in lan {
        let s = ip.to_string();
        if !names.contains(&s) {
            names.push(s);
        }
    }
    names
}

fn generate(cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    let ck = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    if let Some(dir) = cert.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: dir.to_owned(),
            source,
        })?;
    }
    write_private(key, ck.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert, ck.cert.pem()).map_err(|source| TlsError::Write {
        path: cert.to_owned(),
        source,
    })
}

/// Writes the key readable by this user only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)
}

/// Reads a PEM chain and key and builds the rustls server config (HTTP/1.1 only, as the
/// plain listener).
pub fn from_files(cert: &Path, key: &Path) -> Result<TlsMaterial, TlsError> {
    let read_err = |path: &Path, e: &dyn std::fmt::Display| TlsError::Read {
        path: path.to_owned(),
        msg: e.to_string(),
    };
    let pem = std::fs::read_to_string(cert).map_err(|e| read_err(cert, &e))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| read_err(cert, &e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCert {
            path: cert.to_owned(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| read_err(key, &e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Generate(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Mismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
            msg: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        config: Arc::new(config),
        cert_pem: pem,
        cert_path: cert.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_made_once_and_reused() {
        let dir = tempfile_dir();
        let cfg = TlsConfig {
            self_signed: true,
            ..TlsConfig::default()
        };
        let names = names_for("stage", &["10.1.2.3".parse().unwrap()]);
        assert!(names.contains(&"stage.local".to_string()));
        let a = load(&cfg, &dir, &names).expect("made");
        let b = load(&cfg, &dir, &names).expect("reused");
        assert_eq!(
            a.cert_pem, b.cert_pem,
            "the second start reuses the first certificate"
        );
        let on_disk = std::fs::read_to_string(dir.join(SELF_SIGNED_CERT)).unwrap();
        assert_eq!(on_disk, a.cert_pem);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(SELF_SIGNED_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key is private");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile_dir();
        let missing = dir.join("nope.pem");
        let e = from_files(&missing, &missing)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("nope.pem"), "{e}");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a pem").unwrap();
        let e = from_files(&junk, &junk).err().expect("refused").to_string();
        assert!(e.contains("junk.pem"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    fn tempfile_dir() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "monmix-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
