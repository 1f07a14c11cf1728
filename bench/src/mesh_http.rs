//! The MESH REST API client pieces `spine-bench load` uses for `mesh://`
//! and `meshs://` targets: target parsing, HTTP/1.1 keep-alive connections
//! (hyper 1.x client connections, TLS through tokio-rustls), the
//! `Authorization: NHSMESH` token per request, the requests as mesh-client
//! 5.x sends them, and parsing of the JSON answers.
//!
//! Invariants and why:
//! - One hyper `SendRequest` per TCP connection, one request outstanding
//!   on it at a time (hyper's HTTP/1.1 client does not pipeline). The
//!   connection future is polled by the same task as the requests (see
//!   [`run_with`]), so a connection costs no task of its own.
//! - Every request carries a fresh token: a random per-connection nonce
//!   and a count that rises by one per request, as mesh-client does, so a
//!   server that refuses replayed tokens accepts every request.
//! - Only the headers mesh-client sends are sent (names in lower case, as
//!   hyper writes them; HTTP header names are case-insensitive).

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use spine_core::time::Timestamp;
use spine_protocol::mesh::auth::make_token;
use tokio::io::{AsyncRead, AsyncWrite};

/// Where `spine serve` listens for the MESH API when no port is given.
pub(crate) const DEFAULT_MESH_PORT: u16 = 8701;
/// The media type that selects MESH API v2.
pub(crate) const ACCEPT_V2: &str = "application/vnd.mesh.v2+json";
/// Inbox page size the consumers ask for (the API's default and v1's cap).
pub(crate) const MAX_RESULTS: usize = 500;

const MEX_TO: HeaderName = HeaderName::from_static("mex-to");
const MEX_WORKFLOW_ID: HeaderName = HeaderName::from_static("mex-workflowid");
const MEX_CHUNK_RANGE: HeaderName = HeaderName::from_static("mex-chunk-range");

/// A `mesh://HOST:PORT` (HTTP/1.1) or `meshs://HOST:PORT` (HTTPS) target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MeshTarget {
    /// Host name or IP address (IPv6 without brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
}

impl MeshTarget {
    /// Parses a MESH target; `Ok(None)` when `s` has another scheme (a
    /// native target), an error when it is a MESH scheme written wrongly.
    pub(crate) fn parse(s: &str) -> anyhow::Result<Option<MeshTarget>> {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Ok(None);
        };
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "mesh" => false,
            "meshs" => true,
            _ => return Ok(None),
        };
        let bad = |why: &str| anyhow::anyhow!("--target {s:?}: {why}");
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if let Some(c) = rest
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '@'))
        {
            return Err(bad(&format!(
                "it contains {c:?} after the host; give only HOST:PORT after the scheme \
                 (the API's paths are fixed under /messageexchange/)"
            )));
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address opened with '[' is not closed with ']'"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(&format!("{host:?} is not an IPv6 address")));
            }
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected ':PORT' after the IPv6 address"))?,
                ),
            };
            (host, port)
        } else {
            match rest.split_once(':') {
                Some((_, p)) if p.contains(':') => {
                    return Err(bad("write an IPv6 address in brackets, e.g. [::1]:8701"))
                }
                Some((host, p)) => (host, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        let port = match port {
            None => DEFAULT_MESH_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => {
                    return Err(bad(&format!("port {p:?} is not a number from 1 to 65535")))
                }
                Ok(port) => port,
            },
        };
        Ok(Some(MeshTarget {
            host: host.to_owned(),
            port,
            tls,
        }))
    }

    /// `HOST:PORT` as a `Host` header or socket address wants it.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for MeshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "meshs" } else { "mesh" };
        write!(f, "{scheme}://{}", self.authority())
    }
}

/// `202` answer to a send: v2 `{"message_id"}`, v1 `{"messageID"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct SendAccepted {
    #[serde(alias = "messageID")]
    pub(crate) message_id: String,
}

/// An inbox page (v2; v1's `{"messages"}` parses too).
#[derive(Debug, Deserialize)]
pub(crate) struct InboxPage {
    pub(crate) messages: Vec<String>,
    #[serde(default)]
    pub(crate) links: Option<Links>,
    #[serde(default)]
    #[allow(dead_code)] // parsed to check the shape; not needed for the load
    pub(crate) approx_inbox_count: Option<u64>,
}

/// `links` of a v2 inbox page.
#[derive(Debug, Deserialize)]
pub(crate) struct Links {
    #[serde(default)]
    pub(crate) next: Option<String>,
}

impl InboxPage {
    /// Whether more messages wait beyond this page: a `links.next`, or a
    /// page as long as the limit asked for.
    pub(crate) fn more(&self, max_results: usize) -> bool {
        self.links.as_ref().is_some_and(|l| l.next.is_some()) || self.messages.len() >= max_results
    }
}

/// Parses a send's `202` body.
pub(crate) fn parse_send(body: &[u8]) -> anyhow::Result<SendAccepted> {
    let ok: SendAccepted = serde_json::from_slice(body).with_context(|| {
        format!(
            "send answer is not {{\"message_id\": ...}}: {}",
            snippet(body)
        )
    })?;
    anyhow::ensure!(
        !ok.message_id.is_empty(),
        "send answer has an empty message_id"
    );
    Ok(ok)
}

/// Parses an inbox listing's `200` body.
pub(crate) fn parse_inbox(body: &[u8]) -> anyhow::Result<InboxPage> {
    serde_json::from_slice(body).with_context(|| {
        format!(
            "inbox answer is not {{\"messages\": [...]}}: {}",
            snippet(body)
        )
    })
}

/// The start of a body, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    if body.len() > 200 {
        format!("{text}...")
    } else {
        text
    }
}

/// A random UUID-v4-shaped nonce (mesh-client uses `uuid4()`).
pub(crate) fn random_nonce() -> String {
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // The nonce only has to differ between connections: the clock and
        // a counter do.
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = u128::from(FALLBACK.fetch_add(1, Ordering::Relaxed));
        b = (t ^ (n << 64)).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Credentials of one mailbox and the token state of one connection.
#[derive(Clone)]
pub(crate) struct Auth {
    mailbox: Arc<str>,
    password: Arc<str>,
    shared_key: Arc<[u8]>,
    nonce: String,
    count: u64,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("mailbox", &self.mailbox)
            .field("nonce", &self.nonce)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// A new token sequence (fresh nonce, count 0) for `mailbox`.
    pub(crate) fn new(mailbox: &str, password: &str, shared_key: &str) -> Auth {
        Auth {
            mailbox: mailbox.into(),
            password: password.into(),
            shared_key: shared_key.as_bytes().into(),
            nonce: random_nonce(),
            count: 0,
        }
    }

    /// The same credentials with a fresh nonce (for another connection).
    pub(crate) fn fork(&self) -> Auth {
        Auth {
            nonce: random_nonce(),
            count: 0,
            ..self.clone()
        }
    }

    pub(crate) fn mailbox(&self) -> &str {
        &self.mailbox
    }

    /// The next `Authorization` value.
    pub(crate) fn next_token(&mut self) -> HeaderValue {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let token = make_token(
            &self.mailbox,
            &self.password,
            &self.shared_key,
            &self.nonce,
            self.count,
            Timestamp::from_micros(micros),
        );
        self.count += 1;
        // Tokens are ASCII by construction; mailbox ids and nonces are
        // checked visible ASCII before use.
        HeaderValue::try_from(token).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }
}

/// Request body type of every request (empty for GET and PUT).
pub(crate) type Body = Full<Bytes>;

/// Any byte stream a connection runs over (plain TCP or TLS).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// hyper's connection future: it does the connection's I/O and must be
/// polled while requests are outstanding.
pub(crate) type Connection = http1::Connection<TokioIo<Box<dyn Io>>, Body>;
/// hyper's request handle of one connection.
pub(crate) type Sender = http1::SendRequest<Body>;

/// Counts across all connections, for the diagnostics on stderr.
#[derive(Debug, Default)]
pub(crate) struct HttpStats {
    pub(crate) connections: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) requests: AtomicU64,
    /// Answers with a status the caller did not expect.
    pub(crate) unexpected_status: AtomicU64,
}

/// Opens connections to one target, with the headers every request shares.
pub(crate) struct Connector {
    target: MeshTarget,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    host: HeaderValue,
    pub(crate) stats: HttpStats,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// A connector for `target`; `meshs://` needs `ca` (PEM).
    pub(crate) fn new(
        target: MeshTarget,
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> anyhow::Result<Connector> {
        let tls = if target.tls {
            let ca = ca.ok_or_else(|| {
                anyhow::anyhow!("a meshs:// target needs --ca (the PEM CA certificate that signed the server's)")
            })?;
            let config = tls_config(ca, cert, key)?;
            let name = ServerName::try_from(target.host.clone()).map_err(|e| {
                anyhow::anyhow!("{:?} is not a valid TLS server name: {e}", target.host)
            })?;
            Some((tokio_rustls::TlsConnector::from(config), name))
        } else {
            None
        };
        let host = HeaderValue::try_from(target.authority())
            .map_err(|_| anyhow::anyhow!("{:?} cannot be a Host header", target.host))?;
        Ok(Connector {
            target,
            tls,
            host,
            stats: HttpStats::default(),
        })
    }

    /// A new keep-alive connection.
    pub(crate) async fn connect(&self) -> anyhow::Result<(Sender, Connection)> {
        let tcp = tokio::net::TcpStream::connect((self.target.host.as_str(), self.target.port))
            .await
            .with_context(|| format!("connecting to {}", self.target))?;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some((connector, name)) => Box::new(
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .with_context(|| format!("TLS handshake with {}", self.target))?,
            ),
        };
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .with_context(|| format!("HTTP/1.1 handshake with {}", self.target))?;
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        Ok((sender, conn))
    }

    fn request(&self, method: Method, uri: Uri, auth: &mut Auth, body: Bytes) -> Request<Body> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.insert(HOST, self.host.clone());
        h.insert(ACCEPT, HeaderValue::from_static(ACCEPT_V2));
        h.insert(AUTHORIZATION, auth.next_token());
        req
    }

    /// `POST /messageexchange/{sender}/outbox`, one chunk.
    pub(crate) fn send(
        &self,
        auth: &mut Auth,
        outbox: &Uri,
        to: &HeaderValue,
        workflow: &HeaderValue,
        body: Bytes,
    ) -> Request<Body> {
        let mut req = self.request(Method::POST, outbox.clone(), auth, body);
        let h = req.headers_mut();
        h.insert(MEX_TO, to.clone());
        h.insert(MEX_WORKFLOW_ID, workflow.clone());
        h.insert(MEX_CHUNK_RANGE, HeaderValue::from_static("1:1"));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        req
    }

    /// `GET /messageexchange/{mb}/inbox?max_results=N`.
    pub(crate) fn list(
        &self,
        auth: &mut Auth,
        max_results: usize,
    ) -> anyhow::Result<Request<Body>> {
        let uri: Uri = format!(
            "/messageexchange/{}/inbox?max_results={max_results}",
            auth.mailbox()
        )
        .parse()?;
        Ok(self.request(Method::GET, uri, auth, Bytes::new()))
    }

    /// `GET /messageexchange/{mb}/inbox/{id}`.
    pub(crate) fn download(&self, auth: &mut Auth, id: &str) -> anyhow::Result<Request<Body>> {
        let uri: Uri = format!("/messageexchange/{}/inbox/{id}", auth.mailbox()).parse()?;
        Ok(self.request(Method::GET, uri, auth, Bytes::new()))
    }

    /// `PUT /messageexchange/{mb}/inbox/{id}/status/acknowledged`.
    pub(crate) fn acknowledge(&self, auth: &mut Auth, id: &str) -> anyhow::Result<Request<Body>> {
        let uri: Uri = format!(
            "/messageexchange/{}/inbox/{id}/status/acknowledged",
            auth.mailbox()
        )
        .parse()?;
        Ok(self.request(Method::PUT, uri, auth, Bytes::new()))
    }

    /// Sends `req` and reads the whole answer.
    pub(crate) async fn call(
        &self,
        sender: &mut Sender,
        req: Request<Body>,
    ) -> Result<Answer, CallError> {
        if sender.ready().await.is_err() {
            return Err(CallError::Closed);
        }
        let res = match sender.try_send_request(req).await {
            Ok(res) => res,
            // Handed back unwritten: the connection closed first.
            Err(e) if e.message().is_some() => return Err(CallError::Closed),
            Err(e) => return Err(CallError::Failed(e.into_error())),
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let status = res.status();
        let gzip = res
            .headers()
            .get(http::header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes() != b"identity");
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(CallError::Failed)?
            .to_bytes();
        Ok(Answer {
            status,
            body,
            encoded: gzip,
        })
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The connection was closed before the request was written (a server
    /// closing an idle keep-alive connection, as uvicorn does after 5 s):
    /// nothing reached the server, so open another connection and send
    /// the request again, as HTTP clients' pools do. Not an error.
    Closed,
    /// The connection failed with the request written or partly answered:
    /// whether the server acted on it is unknown.
    Failed(hyper::Error),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Closed => f.write_str("connection closed before the request was sent"),
            CallError::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// A whole HTTP answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
    /// The body has a `Content-Encoding` (so its length is not the message's).
    pub(crate) encoded: bool,
}

impl Answer {
    /// An error naming an unexpected status and the body's start.
    pub(crate) fn unexpected(&self, what: &str) -> String {
        format!("{what}: HTTP {} {}", self.status, snippet(&self.body))
    }
}

/// Whether a connection is still worth using after `work` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// The work is done.
    Done,
    /// The connection was closed or failed after answering: open another
    /// and carry on.
    Reconnect,
    /// The connection failed before answering anything: wait a little
    /// before opening another, so a server refusing every connection is
    /// not hammered in a loop.
    Backoff,
}

impl Next {
    /// After `answered` answers on a connection that failed.
    pub(crate) fn after_failure(answered: bool) -> Next {
        if answered {
            Next::Reconnect
        } else {
            Next::Backoff
        }
    }
}

/// How long [`Next::Backoff`] waits.
pub(crate) const BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// Runs `work` over one connection while polling the connection's own
/// future in the same task. `work` owns the `Sender`; when it returns, the
/// sender is dropped and the connection closes.
pub(crate) async fn run_with<W>(conn: Connection, work: W) -> Next
where
    W: Future<Output = Next>,
{
    let conn = async move {
        // Its errors reach the requests too; nothing more to do here.
        let _ = conn.await;
    };
    let (next, ()) = futures_util::future::join(work, conn).await;
    next
}

fn tls_config(
    ca: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in read_certs(ca)? {
        roots
            .add(c)
            .with_context(|| format!("CA file {} is not a usable trust anchor", ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)?
        .with_root_certificates(roots);
    let mut config = match (cert, key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .context("client certificate and key do not go together")?,
        (None, None) => builder.with_no_client_auth(),
        _ => anyhow::bail!("give both --cert and --key for a client certificate, or neither"),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not valid PEM", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no PEM CERTIFICATE block",
        path.display()
    );
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("{} is not valid PEM", path.display()))?
        .ok_or_else(|| anyhow::anyhow!("{} holds no PEM private key", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spine_protocol::mesh::auth::Token;

    fn target(s: &str) -> MeshTarget {
        MeshTarget::parse(s).unwrap().unwrap()
    }

    #[test]
    fn mesh_targets_parse() {
        assert_eq!(
            target("mesh://127.0.0.1:8701"),
            MeshTarget {
                host: "127.0.0.1".into(),
                port: 8701,
                tls: false
            }
        );
        assert_eq!(
            target("MESHS://localhost:9443/"),
            MeshTarget {
                host: "localhost".into(),
                port: 9443,
                tls: true
            }
        );
        assert_eq!(target("mesh://127.0.0.1").port, DEFAULT_MESH_PORT);
        let v6 = target("meshs://[::1]:8701");
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.authority(), "[::1]:8701");
        assert_eq!(v6.to_string(), "meshs://[::1]:8701");
        assert_eq!(target("mesh://h:1").authority(), "h:1");
    }

    #[test]
    fn other_schemes_are_not_mesh() {
        for s in [
            "native://127.0.0.1:7701",
            "natives://h:1",
            "quic://h:1",
            "127.0.0.1:8701",
            "http://127.0.0.1:8701",
        ] {
            assert!(MeshTarget::parse(s).unwrap().is_none(), "{s}");
        }
    }

    #[test]
    fn bad_mesh_targets_are_refused() {
        for s in [
            "mesh://",
            "mesh://:8701",
            "mesh://h:0",
            "mesh://h:99999",
            "mesh://h:x",
            "mesh://h:1/messageexchange",
            "mesh://user@h:1",
            "mesh://::1:8701",
            "mesh://[::1",
            "mesh://[nothost]:1",
            "mesh://[::1]8701",
            "mesh://h :1",
        ] {
            assert!(MeshTarget::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn send_answers_parse() {
        let v2 = parse_send(br#"{"message_id": "20200529155357895317_3573F8"}"#).unwrap();
        assert_eq!(v2.message_id, "20200529155357895317_3573F8");
        let v1 = parse_send(br#"{"messageID":"B519BCD02C37489B8A806813D68ACCD9"}"#).unwrap();
        assert_eq!(v1.message_id, "B519BCD02C37489B8A806813D68ACCD9");
        assert!(parse_send(br#"{"message_id": ""}"#).is_err());
        assert!(parse_send(b"<html>").is_err());
        let err = parse_send(br#"{"detail":[{"event":"SEND","code":"12"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("detail"), "{err}");
    }

    #[test]
    fn inbox_pages_parse() {
        let full = format!(
            r#"{{"messages":[{}],"links":{{"self":"/messageexchange/X26ABC2/inbox?max_results=500","next":"/messageexchange/X26ABC2/inbox?max_results=500&continue_from=abc"}},"approx_inbox_count":900}}"#,
            (0..500)
                .map(|i| format!("\"ID{i}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let page = parse_inbox(full.as_bytes()).unwrap();
        assert_eq!(page.messages.len(), 500);
        assert_eq!(page.messages[499], "ID499");
        assert_eq!(page.approx_inbox_count, Some(900));
        assert!(page.more(MAX_RESULTS));

        let last = parse_inbox(
            br#"{"messages":["A","B"],"links":{"self":"/messageexchange/X26ABC2/inbox"},"approx_inbox_count":2}"#,
        )
        .unwrap();
        assert_eq!(last.messages, ["A", "B"]);
        assert!(!last.more(MAX_RESULTS));

        // v1 shape, and a next link on a short page.
        let v1 = parse_inbox(br#"{"messages":[]}"#).unwrap();
        assert!(v1.messages.is_empty() && !v1.more(MAX_RESULTS));
        let next = parse_inbox(br#"{"messages":["A"],"links":{"next":"/x"}}"#).unwrap();
        assert!(next.more(MAX_RESULTS));
        assert!(parse_inbox(br#"{"links":{}}"#).is_err());
    }

    #[test]
    fn tokens_verify_and_count_up() {
        let mut auth = Auth::new("X26ABC1", "password", "BackBone");
        let now = Timestamp::from_micros(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_micros() as u64,
        );
        let window = std::time::Duration::from_secs(120);
        let mut nonce = None;
        for expected in 0..3 {
            let value = auth.next_token();
            let token = Token::parse(value.to_str().unwrap()).unwrap();
            assert_eq!(token.mailbox, "X26ABC1");
            assert_eq!(token.nonce_count, expected);
            token.verify("password", b"BackBone", now, window).unwrap();
            assert!(token.verify("password", b"other", now, window).is_err());
            assert_eq!(*nonce.get_or_insert(token.nonce.clone()), token.nonce);
        }
        let other = auth.fork().next_token();
        let token = Token::parse(other.to_str().unwrap()).unwrap();
        assert_eq!(token.nonce_count, 0);
        assert_ne!(Some(token.nonce), nonce);
    }

    #[test]
    fn nonces_look_like_uuid4() {
        let n = random_nonce();
        assert_eq!(n.len(), 36);
        let parts: Vec<&str> = n.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert_ne!(random_nonce(), n);
    }

    #[test]
    fn requests_carry_mesh_client_headers() {
        let connector = Connector::new(target("mesh://127.0.0.1:8701"), None, None, None).unwrap();
        let mut auth = Auth::new("X26ABC1", "password", "BackBone");
        let outbox: Uri = "/messageexchange/X26ABC1/outbox".parse().unwrap();
        let req = connector.send(
            &mut auth,
            &outbox,
            &HeaderValue::from_static("X26ABC2"),
            &HeaderValue::from_static("SPINE_LOAD"),
            Bytes::from_static(b"abc"),
        );
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "/messageexchange/X26ABC1/outbox");
        let h = req.headers();
        assert_eq!(h["host"], "127.0.0.1:8701");
        assert_eq!(h["accept"], ACCEPT_V2);
        assert_eq!(h["mex-to"], "X26ABC2");
        assert_eq!(h["mex-workflowid"], "SPINE_LOAD");
        assert_eq!(h["mex-chunk-range"], "1:1");
        assert_eq!(h["content-type"], "application/octet-stream");
        assert!(h["authorization"]
            .to_str()
            .unwrap()
            .starts_with("NHSMESH X26ABC1:"));

        let list = connector.list(&mut auth, 500).unwrap();
        assert_eq!(list.method(), Method::GET);
        assert_eq!(list.uri(), "/messageexchange/X26ABC1/inbox?max_results=500");
        let get = connector.download(&mut auth, "ID1").unwrap();
        assert_eq!(get.uri(), "/messageexchange/X26ABC1/inbox/ID1");
        let ack = connector.acknowledge(&mut auth, "ID1").unwrap();
        assert_eq!(ack.method(), Method::PUT);
        assert_eq!(
            ack.uri(),
            "/messageexchange/X26ABC1/inbox/ID1/status/acknowledged"
        );
        // Four requests, four different counts.
        let counts: Vec<u64> = [&req, &list, &get, &ack]
            .iter()
            .map(|r| {
                Token::parse(r.headers()["authorization"].to_str().unwrap())
                    .unwrap()
                    .nonce_count
            })
            .collect();
        assert_eq!(counts, [0, 1, 2, 3]);
    }

    #[test]
    fn meshs_needs_a_ca() {
        let err = Connector::new(target("meshs://127.0.0.1:8701"), None, None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--ca"), "{err}");
    }
}
