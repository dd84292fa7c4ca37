//! RTMPS certificates: the certificate chain and private key read from PEM
//! files (`-tls-cert`, `-tls-key`), checked to belong together, and made
//! into a rustls server configuration; reread on SIGHUP, where a pair that
//! cannot be used keeps the old one in service.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The RTMPS listener and its certificate (`-tls-listen`, `-tls-cert`,
/// `-tls-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub listen: std::net::SocketAddr,
    pub files: TlsFiles,
}

/// Where the certificate chain and its key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a certificate and key cannot be used. Names the file, never its
/// contents.
#[derive(Debug)]
pub enum TlsError {
    /// The certificate file cannot be read or holds no certificate.
    Certificate(PathBuf, String),
    /// The key file cannot be read or holds no private key.
    Key(PathBuf, String),
    /// The key is not the certificate's, or rustls refuses the pair.
    Mismatch(String),
}

impl TlsError {
    /// The flag whose file is at fault.
    pub fn flag(&self) -> &'static str {
        match self {
            TlsError::Certificate(..) => "-tls-cert",
            TlsError::Key(..) | TlsError::Mismatch(_) => "-tls-key",
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Certificate(path, why) => {
                write!(f, "certificate {}: {why}", path.display())
            }
            TlsError::Key(path, why) => write!(f, "key {}: {why}", path.display()),
            TlsError::Mismatch(why) => {
                write!(f, "the key does not go with the certificate: {why}")
            }
        }
    }
}

impl std::error::Error for TlsError {}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let failed = |why: String| TlsError::Certificate(path.to_owned(), why);
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| failed(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(e.to_string()))?;
    if chain.is_empty() {
        return Err(failed("no PEM certificate in it".into()));
    }
    Ok(chain)
}

/// Reads the pair and builds the server configuration.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| TlsError::Key(files.key.clone(), e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Mismatch(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    Ok(Arc::new(config))
}

/// The RTMPS side of the server: its files and the configuration new
/// connections get.
pub struct TlsAcceptor {
    files: TlsFiles,
    config: RwLock<Arc<ServerConfig>>,
}

impl TlsAcceptor {
    /// Loads the pair; an error is a startup error.
    pub fn new(files: TlsFiles) -> Result<TlsAcceptor, TlsError> {
        let config = load(&files)?;
        Ok(TlsAcceptor {
            files,
            config: RwLock::new(config),
        })
    }

    /// Rereads the pair for connections from now on; on an error the
    /// old pair stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = load(&self.files)?;
        *self.config.write() = config;
        Ok(())
    }

    /// A server side of TLS for a new connection.
    pub fn accept(&self) -> Result<rustls::ServerConnection, rustls::Error> {
        let config = Arc::clone(&self.config.read());
        rustls::ServerConnection::new(config)
    }
}
