//! Building the rustls client configuration from [`TlsOptions`].
//!
//! Invariants and why:
//! - The server is always verified against the CA file given; without one
//!   the client refuses to connect (there is no "skip verification" mode).
//! - The crypto provider is ring, named explicitly, so the process-wide
//!   default provider (which other crates may install) does not matter.
//! - QUIC uses TLS 1.3 only; TCP allows rustls's default versions (1.3 and
//!   1.2). Both offer the ALPN protocol [`ALPN`].

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::RootCertStore;

use crate::config::TlsOptions;
use crate::error::ClientError;

/// The ALPN protocol id of Spine's native protocol, version 1.
pub const ALPN: &[u8] = b"spine/1";

/// A rustls client configuration for `opts`; `quic` restricts it to TLS 1.3.
pub(crate) fn client_config(
    opts: &TlsOptions,
    quic: bool,
) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let Some(ca_file) = &opts.ca_file else {
        return Err(ClientError::tls(
            "no CA file is configured, so the server's certificate cannot be verified; set \
             tls.ca_file (the CLI's --ca-file) to the PEM certificate of the CA that signed the \
             server's certificate",
        ));
    };
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca_file, "CA file")? {
        roots.add(cert).map_err(|e| {
            ClientError::tls(format!(
                "CA file {} holds a certificate rustls refuses as a trust anchor: {e}",
                ca_file.display()
            ))
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if quic {
        &[&rustls::version::TLS13]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| ClientError::tls(format!("the TLS provider cannot be set up: {e}")))?
        .with_root_certificates(roots);
    let mut config = match (&opts.client_cert, &opts.client_key) {
        (Some(cert_file), Some(key_file)) => {
            let certs = read_certs(cert_file, "client certificate file")?;
            let key = read_key(key_file)?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                ClientError::tls(format!(
                    "client certificate {} and key {} cannot be used together: {e}; check the \
                     key belongs to the certificate",
                    cert_file.display(),
                    key_file.display()
                ))
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(ClientError::ConfigInvalid {
                why: "give both tls.client_cert and tls.client_key for mutual TLS, or neither"
                    .into(),
            })
        }
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// The name to verify the server's certificate against.
pub(crate) fn server_name(
    opts: &TlsOptions,
    host: &str,
) -> Result<ServerName<'static>, ClientError> {
    let name = opts.server_name.as_deref().unwrap_or(host);
    ServerName::try_from(name.to_owned()).map_err(|e| {
        ClientError::tls(format!(
            "{name:?} is not a valid TLS server name ({e}); set tls.server_name to the DNS name \
             or IP address in the server's certificate"
        ))
    })
}

fn open(path: &Path, what: &str) -> Result<BufReader<File>, ClientError> {
    File::open(path).map(BufReader::new).map_err(|e| {
        ClientError::tls(format!(
            "cannot read the {what} {}: {e}; check the path and its permissions",
            path.display()
        ))
    })
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let mut reader = open(path, what)?;
    let certs = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            ClientError::tls(format!(
                "the {what} {} is not valid PEM: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(ClientError::tls(format!(
            "the {what} {} holds no PEM CERTIFICATE block; give a PEM-encoded certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ClientError> {
    let mut reader = open(path, "client key file")?;
    match rustls_pemfile::private_key(&mut reader) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(ClientError::tls(format!(
            "the client key file {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            path.display()
        ))),
        Err(e) => Err(ClientError::tls(format!(
            "the client key file {} is not valid PEM: {e}",
            path.display()
        ))),
    }
}
