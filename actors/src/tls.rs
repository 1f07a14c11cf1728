//! TLS for the native protocol: rustls configurations for TCP and QUIC
//! from PEM files, the client-certificate → mailbox rule, and the
//! development certificates `spine certs dev` writes.
//!
//! Invariants:
//! - Every configuration uses the *ring* provider explicitly
//!   ([`rustls::crypto::ring::default_provider`]); nothing reads or installs
//!   a process-wide default provider.
//! - TCP accepts TLS 1.2 and 1.3; QUIC only TLS 1.3 (as QUIC requires),
//!   with ALPN [`NATIVE_ALPN`] and no 0-RTT (early data is replayable).
//! - A server configuration is built only from a certificate chain whose
//!   first certificate's public key matches the private key
//!   (`TLS_KEY_MISMATCH` otherwise), and every certificate in the chain and
//!   the client-CA bundle parses as X.509.
//! - Client certificates are verified by rustls' `WebPkiClientVerifier`
//!   against the configured CA bundle only. With `require_client_cert` a
//!   handshake without a certificate fails; without it, a certificate is
//!   optional but, if presented, must verify. Requiring client
//!   certificates without a CA bundle is an error (`TLS_CLIENT_CA_MISSING`),
//!   never "accept anything".
//! - A verified client certificate maps to a mailbox by one rule, in
//!   [`mailbox_from_certificate`]: its subject has exactly one Common Name,
//!   and that CN parses as a [`MailboxId`].
//! - [`generate_dev_certs`] generates everything in memory before writing
//!   anything; it never overwrites an existing file unless `force` is set;
//!   private keys are created with mode 0600 (and reset to 0600 when
//!   overwritten).
//! - Errors are [`TlsError`] with a stable code and a message naming the
//!   file and what to fix; nothing reachable from input panics.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{InconsistentKeys, RootCertStore, SupportedProtocolVersion};
use spine_core::ids::MailboxId;
use spine_core::time::Clock as _;
use spine_core::ErrorCode;

use crate::system::SystemClock;

/// The ALPN protocol id of the native protocol (`spine/1`); QUIC always
/// uses it.
pub const NATIVE_ALPN: &[u8] = b"spine/1";

/// How long development certificates are valid, in years from today.
const DEV_CERT_YEARS: i32 = 10;

/// Why a TLS configuration or the development certificates could not be
/// made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate file (server chain or client-CA bundle) is unreadable.
    #[error("cannot read the certificate file {}: {source}; check the path and its permissions", path.display())]
    CertRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A certificate file holds no usable PEM certificates.
    #[error("the certificate file {} is not usable: {detail}; it must hold one or more PEM '-----BEGIN CERTIFICATE-----' blocks, the server's own certificate first", path.display())]
    CertParse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The private-key file is unreadable.
    #[error("cannot read the private-key file {}: {source}; check the path and its permissions", path.display())]
    KeyRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The private-key file holds no private key.
    #[error("the private-key file {} holds no private key; it must hold a PEM 'PRIVATE KEY' (PKCS#8), 'RSA PRIVATE KEY' or 'EC PRIVATE KEY' block", path.display())]
    KeyMissing {
        /// The file.
        path: PathBuf,
    },
    /// The private key is malformed or of an unsupported kind.
    #[error("the private key in {} is not usable: {detail}; use an unencrypted ECDSA (P-256/P-384), Ed25519 or RSA (2048+ bits) key in PEM", path.display())]
    KeyParse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The private key does not belong to the certificate.
    #[error("the private key in {} does not match the certificate in {}; give the key the certificate was issued for", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The client-CA bundle cannot be used to verify client certificates.
    #[error("the client CA file {} cannot verify client certificates: {detail}; give the PEM certificate(s) of the CA that issued the client certificates", path.display())]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Client certificates are required but no CA to verify them was given.
    #[error("client certificates are required but no client CA file is configured; configure the CA that issues client certificates, or stop requiring them")]
    ClientCaMissing,
    /// rustls or quinn refused the configuration.
    #[error("cannot build the TLS configuration: {detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
    /// A development-certificate file already exists.
    #[error("{} already exists; remove it, choose another directory, or pass --force to overwrite the development certificates", path.display())]
    DevCertsExist {
        /// The file.
        path: PathBuf,
    },
    /// A development-certificate file (or its directory) cannot be written.
    #[error("cannot write {}: {source}; check that the directory is writable", path.display())]
    DevCertsWrite {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Generating a development key or certificate failed.
    #[error("cannot generate the development certificates: {detail}")]
    DevCertsGenerate {
        /// What failed.
        detail: String,
    },
}

impl ErrorCode for TlsError {
    fn code(&self) -> &'static str {
        match self {
            TlsError::CertRead { .. } => "TLS_CERT_READ",
            TlsError::CertParse { .. } => "TLS_CERT_PARSE",
            TlsError::KeyRead { .. } => "TLS_KEY_READ",
            TlsError::KeyMissing { .. } => "TLS_KEY_MISSING",
            TlsError::KeyParse { .. } => "TLS_KEY_PARSE",
            TlsError::KeyMismatch { .. } => "TLS_KEY_MISMATCH",
            TlsError::ClientCa { .. } => "TLS_CLIENT_CA",
            TlsError::ClientCaMissing => "TLS_CLIENT_CA_MISSING",
            TlsError::Config { .. } => "TLS_CONFIG",
            TlsError::DevCertsExist { .. } => "TLS_DEV_CERTS_EXIST",
            TlsError::DevCertsWrite { .. } => "TLS_DEV_CERTS_WRITE",
            TlsError::DevCertsGenerate { .. } => "TLS_DEV_CERTS_GENERATE",
        }
    }
}

/// The rustls configuration for TLS over TCP: TLS 1.2 and 1.3, the
/// certificate chain and key from PEM files, ALPN `alpn` (in preference
/// order; empty for none).
///
/// `client_ca` is a PEM bundle of CAs whose client certificates are
/// accepted. With `require_client_cert`, every client must present one
/// (and `client_ca` must be given); otherwise a client certificate is
/// optional but verified when presented. Without `client_ca`, client
/// certificates are not requested.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca: Option<&Path>,
    require_client_cert: bool,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let config = build_server_config(
        cert_file,
        key_file,
        client_ca,
        require_client_cert,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        alpn,
    )?;
    Ok(Arc::new(config))
}

/// The quinn configuration for QUIC: as [`server_config`] but TLS 1.3 only
/// and ALPN [`NATIVE_ALPN`], with quinn's default transport settings
/// (adjust them with `quinn::ServerConfig::transport_config`).
pub fn quic_server_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca: Option<&Path>,
    require_client_cert: bool,
) -> Result<quinn::ServerConfig, TlsError> {
    let config = build_server_config(
        cert_file,
        key_file,
        client_ca,
        require_client_cert,
        &[&rustls::version::TLS13],
        &[NATIVE_ALPN],
    )?;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(config).map_err(|e| {
        TlsError::Config {
            detail: format!("not usable for QUIC: {e}"),
        }
    })?;
    Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
}

/// The mailbox a verified client certificate authenticates as.
///
/// The rule: the certificate's subject holds exactly one Common Name, and
/// that CN parses as a [`MailboxId`] (so `x26abc1` and `X26ABC1` are the
/// same mailbox). Subject alternative names are not consulted. `None` for
/// anything else: no CN, several CNs, a CN that is not a mailbox id, or
/// bytes that are not exactly one X.509 certificate.
///
/// This does not verify the certificate: pass only the end-entity
/// certificate rustls verified for the connection (the first of
/// `peer_certificates()`), and check the mailbox exists in the directory.
pub fn mailbox_from_certificate(cert: &CertificateDer<'_>) -> Option<MailboxId> {
    let (rest, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let mut names = parsed.subject().iter_common_name();
    let cn = names.next()?;
    if names.next().is_some() {
        return None;
    }
    MailboxId::parse(cn.as_str().ok()?).ok()
}

/// A client certificate written by [`generate_dev_certs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevClientCert {
    /// The mailbox it authenticates as (its subject CN).
    pub mailbox: MailboxId,
    /// `client-<MAILBOX>.pem`.
    pub cert: PathBuf,
    /// `client-<MAILBOX>-key.pem` (mode 0600).
    pub key: PathBuf,
}

/// The files [`generate_dev_certs`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCerts {
    /// The directory.
    pub dir: PathBuf,
    /// `ca.pem`: the development CA; clients trust it, and the server
    /// verifies client certificates against it.
    pub ca_cert: PathBuf,
    /// `ca-key.pem` (mode 0600).
    pub ca_key: PathBuf,
    /// `server.pem`: for `localhost`, `127.0.0.1` and `::1`.
    pub server_cert: PathBuf,
    /// `server-key.pem` (mode 0600).
    pub server_key: PathBuf,
    /// One per mailbox, in the order given (duplicates dropped).
    pub clients: Vec<DevClientCert>,
}

impl DevCerts {
    /// The paths of the files that are written, in writing order.
    pub fn files(&self) -> Vec<&Path> {
        let mut files = vec![
            self.ca_cert.as_path(),
            self.ca_key.as_path(),
            self.server_cert.as_path(),
            self.server_key.as_path(),
        ];
        for client in &self.clients {
            files.push(&client.cert);
            files.push(&client.key);
        }
        files
    }

    fn layout(dir: &Path, mailboxes: &[MailboxId]) -> DevCerts {
        let mut clients: Vec<DevClientCert> = Vec::with_capacity(mailboxes.len());
        for mailbox in mailboxes {
            if clients.iter().any(|c| &c.mailbox == mailbox) {
                continue;
            }
            clients.push(DevClientCert {
                mailbox: mailbox.clone(),
                cert: dir.join(format!("client-{mailbox}.pem")),
                key: dir.join(format!("client-{mailbox}-key.pem")),
            });
        }
        DevCerts {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            clients,
        }
    }
}

/// Writes development certificates into `dir` (created if missing): a
/// local CA (`ca.pem`, `ca-key.pem`), a server certificate for
/// `localhost`, `127.0.0.1` and `::1` (`server.pem`, `server-key.pem`) and
/// one client certificate per mailbox (`client-<MAILBOX>.pem`,
/// `client-<MAILBOX>-key.pem`; CN the mailbox id, client-auth usage), all
/// ECDSA P-256, signed by the CA and valid from today for ten years.
///
/// Refuses (`TLS_DEV_CERTS_EXIST`, naming the file) if any of the files
/// exists, unless `force`. For development only: the keys are unencrypted
/// and the CA can sign anything.
pub fn generate_dev_certs(
    dir: &Path,
    mailboxes: &[MailboxId],
    force: bool,
) -> Result<DevCerts, TlsError> {
    let layout = DevCerts::layout(dir, mailboxes);
    if !force {
        if let Some(existing) = layout
            .files()
            .into_iter()
            .find(|p| p.symlink_metadata().is_ok())
        {
            return Err(TlsError::DevCertsExist {
                path: existing.to_path_buf(),
            });
        }
    }

    // Everything in memory first: a generation failure writes nothing.
    let contents = dev_cert_contents(&layout)?;

    fs::create_dir_all(dir).map_err(|source| TlsError::DevCertsWrite {
        path: dir.to_path_buf(),
        source,
    })?;
    for (path, pem, private) in &contents {
        write_new_file(path, pem.as_bytes(), *private, force)?;
    }
    // Make the new directory entries durable too.
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| TlsError::DevCertsWrite {
            path: dir.to_path_buf(),
            source,
        })?;
    Ok(layout)
}

/// (path, PEM text, is a private key) for every file of `layout`, in the
/// order of [`DevCerts::files`].
fn dev_cert_contents(layout: &DevCerts) -> Result<Vec<(PathBuf, String, bool)>, TlsError> {
    let generate = |e: rcgen::Error| TlsError::DevCertsGenerate {
        detail: e.to_string(),
    };
    let ((y0, m0, d0), (y1, m1, d1)) = dev_validity();
    let params = |sans: Vec<String>, cn: &str| -> Result<CertificateParams, TlsError> {
        let mut params = CertificateParams::new(sans).map_err(generate)?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, cn);
        name.push(
            DnType::OrganizationName,
            "Spine development (not for production)",
        );
        params.distinguished_name = name;
        params.not_before = rcgen::date_time_ymd(y0, m0, d0);
        params.not_after = rcgen::date_time_ymd(y1, m1, d1);
        Ok(params)
    };

    let ca_key = KeyPair::generate().map_err(generate)?;
    // A name of its own per CA (from its random public key), so a client
    // certificate from another run's CA is an unknown issuer, not a
    // confusing bad signature.
    let tag: String = ca_key
        .public_key_raw()
        .iter()
        .skip(1)
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut ca_params = params(Vec::new(), &format!("Spine development CA {tag}"))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).map_err(generate)?;

    let leaf = |mut params: CertificateParams,
                usage: ExtendedKeyUsagePurpose|
     -> Result<(String, String), TlsError> {
        let key = KeyPair::generate().map_err(generate)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &ca, &ca_key).map_err(generate)?;
        Ok((cert.pem(), key.serialize_pem()))
    };

    let server_sans = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let (server_cert, server_key) = leaf(
        params(server_sans, "localhost")?,
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let mut contents = vec![
        (layout.ca_cert.clone(), ca.pem(), false),
        (layout.ca_key.clone(), ca_key.serialize_pem(), true),
        (layout.server_cert.clone(), server_cert, false),
        (layout.server_key.clone(), server_key, true),
    ];
    for client in &layout.clients {
        let (cert, key) = leaf(
            params(Vec::new(), client.mailbox.as_str())?,
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        contents.push((client.cert.clone(), cert, false));
        contents.push((client.key.clone(), key, true));
    }
    Ok(contents)
}

/// Midnight UTC today (so the certificates are valid at once) and the
/// same day [`DEV_CERT_YEARS`] later, as (year, month, day) pairs that
/// `rcgen::date_time_ymd` accepts: it panics on a date that does not exist,
/// so the year stays within what every date library accepts and the day
/// within every month.
fn dev_validity() -> ((i32, u8, u8), (i32, u8, u8)) {
    let today = SystemClock::new().now().to_civil();
    let year = today.year.clamp(1970, 9000);
    let month = today.month.clamp(1, 12);
    let day = today.day.clamp(1, 28);
    let year = i32::try_from(year).unwrap_or(1970);
    (
        (year, month, day),
        (year.saturating_add(DEV_CERT_YEARS), month, day),
    )
}

/// Creates `path` with `contents`: exclusively unless `force`, mode 0600 for
/// private keys, synced before returning.
fn write_new_file(
    path: &Path,
    contents: &[u8],
    private: bool,
    force: bool,
) -> Result<(), TlsError> {
    let write_error = |source| TlsError::DevCertsWrite {
        path: path.to_path_buf(),
        source,
    };
    let mode = if private { 0o600 } else { 0o644 };
    let mut options = OpenOptions::new();
    options.write(true).mode(mode);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            TlsError::DevCertsExist {
                path: path.to_path_buf(),
            }
        } else {
            write_error(source)
        }
    })?;
    if private {
        // `mode` applies only to new files; an overwritten key keeps its
        // old permissions otherwise.
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(write_error)?;
    }
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(write_error)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build_server_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca: Option<&Path>,
    require_client_cert: bool,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = provider();
    let chain = read_certs(cert_file)?;
    let key = read_key(key_file)?;
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::KeyParse {
                path: key_file.to_path_buf(),
                detail: e.to_string(),
            })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // `Unknown`: the key cannot report its public half; nothing to compare.
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch {
                cert: cert_file.to_path_buf(),
                key: key_file.to_path_buf(),
            })
        }
        Err(e) => {
            return Err(TlsError::CertParse {
                path: cert_file.to_path_buf(),
                detail: format!("the first certificate is not usable: {e}"),
            })
        }
    }

    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config {
            detail: e.to_string(),
        })?;
    let builder = match client_ca {
        None if require_client_cert => return Err(TlsError::ClientCaMissing),
        None => builder.with_no_client_auth(),
        Some(ca_file) => builder.with_client_cert_verifier(client_verifier(
            ca_file,
            require_client_cert,
            provider,
        )?),
    };
    let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn client_verifier(
    ca_file: &Path,
    require_client_cert: bool,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let ca_error = |detail: String| TlsError::ClientCa {
        path: ca_file.to_path_buf(),
        detail,
    };
    let mut roots = RootCertStore::empty();
    for (i, cert) in read_certs(ca_file)?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| ca_error(format!("certificate #{} is not a usable CA: {e}", i + 1)))?;
    }
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    if !require_client_cert {
        builder = builder.allow_unauthenticated();
    }
    builder.build().map_err(|e| ca_error(e.to_string()))
}

/// Every certificate in a PEM file, each checked to parse as X.509.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let parse_error = |detail: String| TlsError::CertParse {
        path: path.to_path_buf(),
        detail,
    };
    let bytes = fs::read(path).map_err(|source| TlsError::CertRead {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| parse_error(format!("malformed PEM: {e}")))?;
    if certs.is_empty() {
        return Err(parse_error("no CERTIFICATE block found".into()));
    }
    for (i, cert) in certs.iter().enumerate() {
        match x509_parser::parse_x509_certificate(cert.as_ref()) {
            Ok(([], _)) => {}
            Ok(_) => {
                return Err(parse_error(format!(
                    "certificate #{} has trailing bytes",
                    i + 1
                )))
            }
            Err(e) => {
                return Err(parse_error(format!(
                    "certificate #{} is not valid X.509: {e}",
                    i + 1
                )))
            }
        }
    }
    Ok(certs)
}

/// The first private key in a PEM file.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = fs::read(path).map_err(|source| TlsError::KeyRead {
        path: path.to_path_buf(),
        source,
    })?;
    match rustls_pemfile::private_key(&mut bytes.as_slice()) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(TlsError::KeyMissing {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(TlsError::KeyParse {
            path: path.to_path_buf(),
            detail: format!("malformed PEM: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};

    /// Bound on every network step, so a broken handshake fails the test
    /// instead of hanging it.
    const STEP: Duration = Duration::from_secs(10);

    fn mailbox(id: &str) -> MailboxId {
        MailboxId::parse(id).unwrap()
    }

    fn demo() -> Vec<MailboxId> {
        ["X26ABC1", "X26ABC2", "X26ABC3"].map(mailbox).to_vec()
    }

    fn dev_certs() -> (tempfile::TempDir, DevCerts) {
        let dir = tempfile::tempdir().unwrap();
        let certs = generate_dev_certs(dir.path(), &demo(), false).unwrap();
        (dir, certs)
    }

    fn client_cert(certs: &DevCerts, id: &str) -> (PathBuf, PathBuf) {
        let c = certs
            .clients
            .iter()
            .find(|c| c.mailbox.as_str() == id)
            .unwrap();
        (c.cert.clone(), c.key.clone())
    }

    /// A client trusting `ca`, presenting `identity` if given.
    fn client_config(
        ca: &Path,
        identity: Option<&(PathBuf, PathBuf)>,
        versions: &[&'static SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> rustls::ClientConfig {
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca).unwrap() {
            roots.add(cert).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(read_certs(cert).unwrap(), read_key(key).unwrap())
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// One TLS connection over loopback TCP: the client sends `ping`, the
    /// server answers `pong`. Returns what the server saw (the mailbox of
    /// the client certificate, if any) and whether the client got its
    /// answer.
    async fn tcp_exchange(
        server: Arc<rustls::ServerConfig>,
        client: rustls::ClientConfig,
    ) -> (Result<Option<MailboxId>, String>, Result<(), String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server_side = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
            let mut tls = tokio_rustls::TlsAcceptor::from(server)
                .accept(tcp)
                .await
                .map_err(|e| e.to_string())?;
            let (_, conn) = tls.get_ref();
            assert_eq!(conn.alpn_protocol(), Some(NATIVE_ALPN));
            let mailbox = conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(mailbox_from_certificate);
            let mut ping = [0u8; 4];
            tls.read_exact(&mut ping).await.map_err(|e| e.to_string())?;
            assert_eq!(&ping, b"ping");
            tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
            tls.shutdown().await.map_err(|e| e.to_string())?;
            Ok(mailbox)
        });
        let client_side = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
            let mut pong = [0u8; 4];
            tls.read_exact(&mut pong).await.map_err(|e| e.to_string())?;
            assert_eq!(&pong, b"pong");
            Ok(())
        };
        let client = tokio::time::timeout(STEP, client_side).await.unwrap();
        let server = tokio::time::timeout(STEP, server_side)
            .await
            .unwrap()
            .unwrap();
        (server, client)
    }

    fn tcp_server(certs: &DevCerts, ca: bool, require: bool) -> Arc<rustls::ServerConfig> {
        server_config(
            &certs.server_cert,
            &certs.server_key,
            ca.then_some(certs.ca_cert.as_path()),
            require,
            &[NATIVE_ALPN],
        )
        .unwrap()
    }

    const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

    #[test]
    fn dev_certs_are_written_with_private_keys_0600() {
        let (dir, certs) = dev_certs();
        let names: Vec<String> = certs
            .files()
            .iter()
            .map(|p| {
                assert_eq!(p.parent(), Some(dir.path()));
                p.file_name().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "ca.pem",
                "ca-key.pem",
                "server.pem",
                "server-key.pem",
                "client-X26ABC1.pem",
                "client-X26ABC1-key.pem",
                "client-X26ABC2.pem",
                "client-X26ABC2-key.pem",
                "client-X26ABC3.pem",
                "client-X26ABC3-key.pem",
            ]
        );
        for path in certs.files() {
            let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
            let name = path.file_name().unwrap().to_string_lossy();
            if name.ends_with("-key.pem") {
                assert_eq!(mode, 0o600, "{name}");
                assert!(read_key(path).is_ok(), "{name}");
            } else {
                assert_eq!(mode & 0o022, 0, "{name}");
                assert_eq!(read_certs(path).unwrap().len(), 1, "{name}");
            }
        }
    }

    #[test]
    fn dev_certs_carry_the_expected_names_and_usages() {
        use x509_parser::extensions::GeneralName;
        let (_dir, certs) = dev_certs();
        let server = &read_certs(&certs.server_cert).unwrap()[0];
        let (_, parsed) = x509_parser::parse_x509_certificate(server.as_ref()).unwrap();
        let sans = parsed.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = sans
            .value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::DNSName(d) => d.to_string(),
                GeneralName::IPAddress(ip) => format!("{ip:?}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(names[0], "localhost");
        assert_eq!(names[1], format!("{:?}", &[127u8, 0, 0, 1][..]));
        assert_eq!(
            names[2],
            format!("{:?}", &std::net::Ipv6Addr::LOCALHOST.octets()[..])
        );
        assert!(
            parsed
                .extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .server_auth
        );
        assert!(parsed.validity().is_valid());

        let client = &read_certs(&client_cert(&certs, "X26ABC2").0).unwrap()[0];
        let (_, parsed) = x509_parser::parse_x509_certificate(client.as_ref()).unwrap();
        let eku = parsed.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert_eq!(mailbox_from_certificate(client), Some(mailbox("X26ABC2")));

        let ca = &read_certs(&certs.ca_cert).unwrap()[0];
        let (_, parsed) = x509_parser::parse_x509_certificate(ca.as_ref()).unwrap();
        assert!(parsed.is_ca());
        // "Spine development CA <tag>" is no mailbox id.
        assert_eq!(mailbox_from_certificate(ca), None);
    }

    #[test]
    fn mailbox_from_certificate_rejects_non_certificates() {
        assert_eq!(
            mailbox_from_certificate(&CertificateDer::from(vec![])),
            None
        );
        assert_eq!(
            mailbox_from_certificate(&CertificateDer::from(b"garbage".to_vec())),
            None
        );
        let (_dir, certs) = dev_certs();
        let mut der = read_certs(&client_cert(&certs, "X26ABC1").0).unwrap()[0].to_vec();
        der.push(0);
        assert_eq!(mailbox_from_certificate(&CertificateDer::from(der)), None);
    }

    #[test]
    fn duplicate_mailboxes_are_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let certs = generate_dev_certs(dir.path(), &[mailbox("a1"), mailbox("A1")], false).unwrap();
        assert_eq!(certs.clients.len(), 1);
        assert!(dir.path().join("client-A1.pem").exists());
    }

    #[test]
    fn server_config_loads_with_and_without_client_ca() {
        let (_dir, certs) = dev_certs();
        let plain = tcp_server(&certs, false, false);
        assert_eq!(plain.alpn_protocols, vec![NATIVE_ALPN.to_vec()]);
        tcp_server(&certs, true, false);
        tcp_server(&certs, true, true);
        let none = server_config(&certs.server_cert, &certs.server_key, None, false, &[]).unwrap();
        assert!(none.alpn_protocols.is_empty());
    }

    #[test]
    fn requiring_client_certs_needs_a_ca() {
        let (_dir, certs) = dev_certs();
        let e = server_config(&certs.server_cert, &certs.server_key, None, true, &[]).unwrap_err();
        assert_eq!(e.code(), "TLS_CLIENT_CA_MISSING");
        let e = quic_server_config(&certs.server_cert, &certs.server_key, None, true).unwrap_err();
        assert_eq!(e.code(), "TLS_CLIENT_CA_MISSING");
    }

    #[test]
    fn mismatched_key_is_refused() {
        let (_dir, certs) = dev_certs();
        let (_, other_key) = client_cert(&certs, "X26ABC1");
        let e = server_config(&certs.server_cert, &other_key, None, false, &[]).unwrap_err();
        assert_eq!(e.code(), "TLS_KEY_MISMATCH");
        let msg = e.to_string();
        assert!(msg.contains("client-X26ABC1-key.pem"), "{msg}");
        assert!(msg.contains("server.pem"), "{msg}");
    }

    #[test]
    fn missing_files_are_named() {
        let (dir, certs) = dev_certs();
        let missing = dir.path().join("nope.pem");
        let e = server_config(&missing, &certs.server_key, None, false, &[]).unwrap_err();
        assert_eq!(e.code(), "TLS_CERT_READ");
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );

        let e = server_config(&certs.server_cert, &missing, None, false, &[]).unwrap_err();
        assert_eq!(e.code(), "TLS_KEY_READ");
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );

        let e = server_config(
            &certs.server_cert,
            &certs.server_key,
            Some(&missing),
            true,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.code(), "TLS_CERT_READ");
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn garbage_pem_is_refused() {
        let (dir, certs) = dev_certs();
        let garbage = dir.path().join("garbage.pem");
        let cases: [&[u8]; 4] = [
            b"not a certificate\n",
            b"",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            // Valid base64, but not X.509.
            b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        ];
        for case in cases {
            fs::write(&garbage, case).unwrap();
            let e = server_config(&garbage, &certs.server_key, None, false, &[]).unwrap_err();
            assert_eq!(e.code(), "TLS_CERT_PARSE", "{case:?}: {e}");
            assert!(e.to_string().contains("garbage.pem"), "{e}");
            let e = server_config(
                &certs.server_cert,
                &certs.server_key,
                Some(&garbage),
                false,
                &[],
            )
            .unwrap_err();
            assert_eq!(e.code(), "TLS_CERT_PARSE", "{case:?}: {e}");
        }

        fs::write(&garbage, b"not a key\n").unwrap();
        let e = server_config(&certs.server_cert, &garbage, None, false, &[]).unwrap_err();
        assert_eq!(e.code(), "TLS_KEY_MISSING");
        // A certificate is not a key either.
        let e =
            server_config(&certs.server_cert, &certs.server_cert, None, false, &[]).unwrap_err();
        assert_eq!(e.code(), "TLS_KEY_MISSING");
        fs::write(
            &garbage,
            b"-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = server_config(&certs.server_cert, &garbage, None, false, &[]).unwrap_err();
        assert_eq!(e.code(), "TLS_KEY_PARSE");
    }

    #[test]
    fn existing_files_are_not_overwritten_without_force() {
        let (dir, certs) = dev_certs();
        let ca_before = fs::read(&certs.ca_cert).unwrap();
        let e = generate_dev_certs(dir.path(), &demo(), false).unwrap_err();
        assert_eq!(e.code(), "TLS_DEV_CERTS_EXIST");
        assert!(e.to_string().contains("ca.pem"), "{e}");
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(fs::read(&certs.ca_cert).unwrap(), ca_before);

        // Any one file is enough to refuse, and it is the one named.
        let other = tempfile::tempdir().unwrap();
        let lone = other.path().join("client-X26ABC2-key.pem");
        fs::write(&lone, b"keep me").unwrap();
        let e = generate_dev_certs(other.path(), &demo(), false).unwrap_err();
        assert!(e.to_string().contains("client-X26ABC2-key.pem"), "{e}");
        assert_eq!(fs::read(&lone).unwrap(), b"keep me");
        assert!(!other.path().join("ca.pem").exists());

        // With force: new certificates, keys back to 0600.
        fs::set_permissions(&certs.server_key, Permissions::from_mode(0o644)).unwrap();
        generate_dev_certs(dir.path(), &demo(), true).unwrap();
        assert_ne!(fs::read(&certs.ca_cert).unwrap(), ca_before);
        let mode = fs::metadata(&certs.server_key)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        tcp_server(&certs, true, true);
    }

    #[test]
    fn unwritable_directory_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, b"").unwrap();
        let e = generate_dev_certs(&file, &demo(), false).unwrap_err();
        assert_eq!(e.code(), "TLS_DEV_CERTS_WRITE");
        assert!(e.to_string().contains("a-file"), "{e}");
    }

    #[tokio::test]
    async fn mtls_handshake_maps_the_client_certificate_to_its_mailbox() {
        let (_dir, certs) = dev_certs();
        let identity = client_cert(&certs, "X26ABC1");
        for versions in [
            BOTH,
            &[&rustls::version::TLS12][..],
            &[&rustls::version::TLS13][..],
        ] {
            let client = client_config(&certs.ca_cert, Some(&identity), versions, &[NATIVE_ALPN]);
            let (server, client) = tcp_exchange(tcp_server(&certs, true, true), client).await;
            assert_eq!(client, Ok(()));
            assert_eq!(server, Ok(Some(mailbox("X26ABC1"))));
        }
    }

    #[tokio::test]
    async fn plain_tls_handshake_without_client_ca() {
        let (_dir, certs) = dev_certs();
        let client = client_config(&certs.ca_cert, None, BOTH, &[NATIVE_ALPN]);
        let (server, client) = tcp_exchange(tcp_server(&certs, false, false), client).await;
        assert_eq!(client, Ok(()));
        assert_eq!(server, Ok(None));
    }

    #[tokio::test]
    async fn client_without_certificate_is_refused_when_required() {
        let (_dir, certs) = dev_certs();
        let client = client_config(&certs.ca_cert, None, BOTH, &[NATIVE_ALPN]);
        let (server, client) = tcp_exchange(tcp_server(&certs, true, true), client).await;
        assert!(server.unwrap_err().contains("no certificates"));
        assert!(client.is_err(), "{client:?}");
    }

    #[tokio::test]
    async fn client_certificate_is_optional_but_verified_when_not_required() {
        let (_dir, certs) = dev_certs();
        let client = client_config(&certs.ca_cert, None, BOTH, &[NATIVE_ALPN]);
        let (server, client) = tcp_exchange(tcp_server(&certs, true, false), client).await;
        assert_eq!(client, Ok(()));
        assert_eq!(server, Ok(None));

        let (_other_dir, other) = dev_certs();
        let foreign = client_cert(&other, "X26ABC1");
        let client = client_config(&certs.ca_cert, Some(&foreign), BOTH, &[NATIVE_ALPN]);
        let (server, client) = tcp_exchange(tcp_server(&certs, true, false), client).await;
        assert!(server.is_err(), "{server:?}");
        assert!(client.is_err(), "{client:?}");
    }

    #[tokio::test]
    async fn client_certificate_from_another_ca_is_refused() {
        let (_dir, certs) = dev_certs();
        let (_other_dir, other) = dev_certs();
        let foreign = client_cert(&other, "X26ABC1");
        let client = client_config(&certs.ca_cert, Some(&foreign), BOTH, &[NATIVE_ALPN]);
        let (server, client) = tcp_exchange(tcp_server(&certs, true, true), client).await;
        // Each development CA has a name of its own.
        let server = server.unwrap_err();
        assert!(server.contains("UnknownIssuer"), "{server}");
        assert!(client.is_err(), "{client:?}");
    }

    #[tokio::test]
    async fn server_certificate_is_no_client_certificate() {
        // Its CN "localhost" would parse as a mailbox id; the missing
        // client-auth usage keeps it out.
        let (_dir, certs) = dev_certs();
        let identity = (certs.server_cert.clone(), certs.server_key.clone());
        let client = client_config(&certs.ca_cert, Some(&identity), BOTH, &[NATIVE_ALPN]);
        let (server, client) = tcp_exchange(tcp_server(&certs, true, true), client).await;
        let server = server.unwrap_err();
        assert!(server.contains("extended key usage"), "{server}");
        assert!(client.is_err(), "{client:?}");
    }

    #[tokio::test]
    async fn quic_handshake_and_one_bidirectional_stream() {
        let (_dir, certs) = dev_certs();
        let server_config = quic_server_config(
            &certs.server_cert,
            &certs.server_key,
            Some(&certs.ca_cert),
            true,
        )
        .unwrap();
        let server =
            quinn::Endpoint::server(server_config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = server.local_addr().unwrap();
        let server_side = tokio::spawn(async move {
            let conn = server.accept().await.unwrap().await.unwrap();
            let chain = conn
                .peer_identity()
                .unwrap()
                .downcast::<Vec<CertificateDer<'static>>>()
                .unwrap();
            let mailbox = mailbox_from_certificate(&chain[0]);
            let (mut send, mut recv) = conn.accept_bi().await.unwrap();
            let request = recv.read_to_end(64).await.unwrap();
            send.write_all(&request).await.unwrap();
            send.finish().unwrap();
            let alpn = conn
                .handshake_data()
                .unwrap()
                .downcast::<quinn::crypto::rustls::HandshakeData>()
                .unwrap()
                .protocol;
            // Until the client has read the answer and closed.
            conn.closed().await;
            (mailbox, alpn)
        });

        let identity = client_cert(&certs, "X26ABC3");
        let tls = client_config(
            &certs.ca_cert,
            Some(&identity),
            &[&rustls::version::TLS13],
            &[NATIVE_ALPN],
        );
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        let mut client = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        client.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
        let exchange = async {
            let conn = client.connect(addr, "localhost").unwrap().await.unwrap();
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            send.write_all(b"ping").await.unwrap();
            send.finish().unwrap();
            let answer = recv.read_to_end(64).await.unwrap();
            conn.close(0u32.into(), b"done");
            answer
        };
        let answer = tokio::time::timeout(STEP, exchange).await.unwrap();
        assert_eq!(answer, b"ping");
        let (seen, alpn) = tokio::time::timeout(STEP, server_side)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, Some(mailbox("X26ABC3")));
        assert_eq!(alpn.as_deref(), Some(NATIVE_ALPN));
        client.wait_idle().await;
    }

    #[tokio::test]
    async fn quic_refuses_a_client_without_certificate() {
        let (_dir, certs) = dev_certs();
        let server_config = quic_server_config(
            &certs.server_cert,
            &certs.server_key,
            Some(&certs.ca_cert),
            true,
        )
        .unwrap();
        let server =
            quinn::Endpoint::server(server_config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = server.local_addr().unwrap();
        let server_side =
            tokio::spawn(async move { server.accept().await.unwrap().await.map(|_| ()) });
        let tls = client_config(
            &certs.ca_cert,
            None,
            &[&rustls::version::TLS13],
            &[NATIVE_ALPN],
        );
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        let mut client = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        client.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
        let attempt = async {
            let conn = client.connect(addr, "localhost").unwrap().await?;
            // TLS 1.3: the client may finish before the server rejects it.
            conn.open_bi().await?;
            conn.closed().await;
            Ok::<(), quinn::ConnectionError>(())
        };
        let _ = tokio::time::timeout(STEP, attempt).await.unwrap();
        let server = tokio::time::timeout(STEP, server_side)
            .await
            .unwrap()
            .unwrap();
        let e = server.unwrap_err().to_string();
        assert!(e.contains("no certificates"), "{e}");
    }
}
