//! The RTMPS flags (`-tls-listen`, `-tls-cert`, `-tls-key`, go-rtmp's
//! names) into [`TlsSettings`]: all three or none, and the certificate and
//! key read and checked now, so that a bad pair is a startup error naming
//! its flag.

use std::path::PathBuf;

use super::UsageError;
use super::values::parse_addr;
use crate::tls::{self, TlsFiles, TlsSettings};

/// The RTMPS flags as given.
pub(super) struct TlsFlags<'a> {
    pub listen: Option<&'a str>,
    pub cert: Option<&'a str>,
    pub key: Option<&'a str>,
}

pub(super) fn tls_settings(flags: &TlsFlags<'_>) -> Result<Option<TlsSettings>, UsageError> {
    let given = [
        ("-tls-listen", flags.listen),
        ("-tls-cert", flags.cert),
        ("-tls-key", flags.key),
    ];
    if given.iter().all(|(_, v)| v.is_none()) {
        return Ok(None);
    }
    if let Some((missing, _)) = given.iter().find(|(_, v)| v.is_none()) {
        let set: Vec<&str> = given
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(f, _)| *f)
            .collect();
        return Err(UsageError(format!(
            "rtmp-server: {} needs {missing} too (RTMPS wants -tls-listen, -tls-cert and -tls-key)",
            set.join(" and ")
        )));
    }
    let (Some(listen), Some(cert), Some(key)) = (flags.listen, flags.cert, flags.key) else {
        return Ok(None);
    };
    let files = TlsFiles {
        cert: PathBuf::from(cert),
        key: PathBuf::from(key),
    };
    if let Err(e) = tls::load(&files) {
        return Err(UsageError(format!(
            "rtmp-server: invalid value for flag {}: {e}",
            e.flag()
        )));
    }
    Ok(Some(TlsSettings {
        listen: parse_addr("tls-listen", listen)?,
        files,
    }))
}
