//! A minimal fake server speaking the native protocol with
//! `spine_protocol::ServerCodec` over loopback TCP, TLS or QUIC, scripted
//! to misbehave in the ways the client must survive.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use spine_core::envelope::{Envelope, MessageType};
use spine_core::ids::{MailboxId, MessageId, OdsCode, WorkflowId};
use spine_core::message::MessageStatus;
use spine_core::time::Timestamp;
use spine_protocol::{
    split_download, CreditWindow, InboxEntry, Limits, LookupEntry, Request, Response, SendHeader,
    SendOk, ServerCodec, TrackInfo, WireError, WireErrorCode,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{ClientConfig, Endpoint};

pub(crate) const PASSWORD: &str = "secret";
pub(crate) const SERVER_NAME: &str = "fake-spine/1";
pub(crate) const BODY_LEN: usize = 100;

pub(crate) fn mailbox(s: &str) -> MailboxId {
    MailboxId::parse(s).unwrap()
}

pub(crate) fn workflow(s: &str) -> WorkflowId {
    WorkflowId::parse(s).unwrap()
}

/// The message id the fake server gives the send whose subject is `n`.
pub(crate) fn message_id(n: u32) -> MessageId {
    MessageId::parse(&format!("20200601122152{n:06}_D59900")).unwrap()
}

/// A send whose subject carries `n` (echoed in the message id).
pub(crate) fn header(n: u32) -> SendHeader {
    let mut h = SendHeader::simple(mailbox("X26ABC2"), workflow("PATH_TEST"));
    h.subject = Some(n.to_string());
    h
}

/// The body of every downloaded chunk.
pub(crate) fn body() -> Bytes {
    (0..BODY_LEN).map(|i| i as u8).collect()
}

pub(crate) fn envelope() -> Arc<Envelope> {
    let created_at = Timestamp::from_micros(1_795_480_569_123_456);
    Arc::new(Envelope {
        message_id: message_id(1),
        message_type: MessageType::Data,
        sender: mailbox("X26ABC2"),
        recipient: mailbox("X26ABC1"),
        workflow_id: workflow("PATH_TEST"),
        subject: Some("Lab results".into()),
        local_id: None,
        file_name: None,
        content_type: None,
        compressed: false,
        encrypted: false,
        checksum: None,
        partner_id: None,
        total_chunks: 1,
        created_at,
        expires_at: created_at.saturating_add(Duration::from_secs(5 * 86_400)),
        linked_message_id: None,
        report: None,
    })
}

/// A client configuration for `endpoint` with short timeouts.
pub(crate) fn config(endpoint: Endpoint) -> ClientConfig {
    let mut c = ClientConfig::new(endpoint, mailbox("X26ABC1"), PASSWORD);
    c.connect_timeout = Duration::from_secs(5);
    c.request_timeout = Duration::from_secs(5);
    c
}

/// Runs a test body with an overall bound.
pub(crate) async fn bounded<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .expect("test took longer than 60 s")
}

/// Polls `condition` until it holds (bounded).
pub(crate) async fn eventually(mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 5 s");
}

/// How the fake server misbehaves.
#[derive(Clone, Debug)]
pub(crate) struct Script {
    /// Hold SEND answers until this many are held, then answer them newest
    /// first (out of order).
    pub hold_sends: usize,
    /// Also answer held SENDs after this long without a new request.
    pub flush_idle: Option<Duration>,
    /// Never answer PING.
    pub ignore_pings: bool,
    /// Answer PING with bytes that are not a frame.
    pub garbage_on_ping: bool,
    /// Close the connection when a TRACK arrives.
    pub drop_on_track: bool,
    /// Piece size of downloads.
    pub piece_bytes: usize,
    /// Pushes available to each subscription.
    pub pushes: usize,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            hold_sends: 1,
            flush_idle: None,
            ignore_pings: false,
            garbage_on_ping: false,
            drop_on_track: false,
            piece_bytes: 7,
            pushes: 0,
        }
    }
}

/// What the fake server observed.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub connections: AtomicUsize,
    pub hellos: AtomicUsize,
    pub sends: AtomicUsize,
    /// `SEND_BATCH` frames, and the messages in them.
    pub batches: AtomicUsize,
    pub batch_items: AtomicUsize,
    pub held: AtomicUsize,
    pub max_held: AtomicUsize,
    pub credit_granted: AtomicU64,
    pub unsubscribes: AtomicUsize,
}

impl Stats {
    pub(crate) fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

/// One connection's (or, on QUIC, one stream's) state.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    pub authed: bool,
    held: Vec<(u64, Response)>,
    sub: Option<CreditWindow>,
    pushed: usize,
}

enum Step {
    Reply(Vec<(u64, Response)>),
    Garbage,
    Close,
}

/// How [`serve`] ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The peer finished (or the stream failed).
    Eof,
    /// The script closed the connection.
    Close,
}

impl ConnState {
    fn handle(&mut self, script: &Script, stats: &Stats, id: u64, request: Request) -> Step {
        let error = |code: WireErrorCode, name: &str, message: &str| {
            Step::Reply(vec![(
                id,
                Response::Error(WireError::new(code, name, message)),
            )])
        };
        let reply = |r: Response| Step::Reply(vec![(id, r)]);
        match request {
            Request::Hello {
                mailbox, password, ..
            } => {
                stats.hellos.fetch_add(1, Ordering::SeqCst);
                if password.expose() != PASSWORD {
                    return error(
                        WireErrorCode::AuthFailed,
                        "DIR_AUTH_FAILED",
                        "the mailbox or password is wrong",
                    );
                }
                self.authed = true;
                reply(Response::HelloOk {
                    mailbox,
                    server_name: SERVER_NAME.into(),
                    limits: Limits::default().advertise(),
                })
            }
            Request::Ping if script.garbage_on_ping => Step::Garbage,
            Request::Ping if script.ignore_pings => Step::Reply(vec![]),
            Request::Ping => reply(Response::Pong),
            _ if !self.authed => error(
                WireErrorCode::NotAuthenticated,
                "NOT_AUTHENTICATED",
                "say HELLO first",
            ),
            Request::Send { header, .. } => {
                stats.sends.fetch_add(1, Ordering::SeqCst);
                let n: u32 = header
                    .subject
                    .as_deref()
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0);
                self.held.push((
                    id,
                    Response::SendOk(SendOk {
                        message_id: message_id(n),
                        duplicate: false,
                        status: MessageStatus::Accepted,
                    }),
                ));
                let held = self.held.len();
                stats.held.store(held, Ordering::SeqCst);
                stats.max_held.fetch_max(held, Ordering::SeqCst);
                if held >= script.hold_sends {
                    return Step::Reply(self.flush_held(stats));
                }
                Step::Reply(vec![])
            }
            Request::SendBatch(items) => {
                stats.batches.fetch_add(1, Ordering::SeqCst);
                stats.batch_items.fetch_add(items.len(), Ordering::SeqCst);
                let results = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item.header.subject.as_deref() {
                        Some("bad") => Err(WireError::new(
                            WireErrorCode::DeliveryRefused,
                            "DIR_RECIPIENT_UNREGISTERED",
                            "the recipient is not registered",
                        )),
                        // A numeric subject names the id, as for SEND.
                        subject => Ok(SendOk {
                            message_id: message_id(
                                subject.and_then(|s| s.parse().ok()).unwrap_or(i as u32),
                            ),
                            duplicate: false,
                            status: MessageStatus::Accepted,
                        }),
                    })
                    .collect();
                reply(Response::SendBatchOk(results))
            }
            Request::SendChunk { chunk_no, .. } => reply(Response::ChunkOk {
                complete: chunk_no == 3,
            }),
            Request::ListInbox { .. } => reply(Response::InboxPage {
                messages: vec![InboxEntry::from_envelope(&envelope(), 5)],
                next: None,
                total: 1,
            }),
            Request::Download { chunk_no, .. } => Step::Reply(
                split_download(envelope(), chunk_no, body(), script.piece_bytes)
                    .map(|r| (id, r))
                    .collect(),
            ),
            Request::Acknowledge { .. } => reply(Response::AckOk),
            Request::AcknowledgeBatch { message_ids } => {
                reply(Response::AckBatchOk(vec![Ok(()); message_ids.len()]))
            }
            Request::Track { .. } if script.drop_on_track => Step::Close,
            Request::Track { .. } => reply(Response::TrackInfo(TrackInfo {
                envelope: envelope(),
                status: MessageStatus::Accepted,
                order: Some(5),
                chunks_received: 1,
                acknowledged_at: None,
                expired_at: None,
            })),
            Request::Lookup { workflow_id, .. } => {
                reply(Response::LookupResult(vec![LookupEntry {
                    mailbox_id: mailbox("X26ABC2"),
                    mailbox_name: format!("Receives {workflow_id}"),
                    ods_code: OdsCode::parse("X26").unwrap(),
                }]))
            }
            Request::Subscribe { credit, .. } => {
                self.sub = Some(CreditWindow::new(credit, Limits::default().max_credit));
                reply(Response::Subscribed { credit })
            }
            Request::Credit { add } => {
                stats
                    .credit_granted
                    .fetch_add(u64::from(add), Ordering::SeqCst);
                if let Some(window) = &mut self.sub {
                    window.grant(add);
                }
                Step::Reply(vec![])
            }
            Request::Unsubscribe => {
                self.sub = None;
                stats.unsubscribes.fetch_add(1, Ordering::SeqCst);
                reply(Response::Unsubscribed)
            }
            // Echoes the body; a body of `fault` is refused.
            Request::ServiceRequest { body, .. } if body.as_ref() == b"fault" => reply(
                Response::ServiceResponse(Err(spine_protocol::ServiceFault {
                    code: "PDS_PATIENT_NOT_FOUND".into(),
                    message: "no patient".into(),
                })),
            ),
            Request::ServiceRequest { body, .. } => reply(Response::ServiceResponse(Ok(body))),
            // Registered, then one call straight away.
            Request::RegisterProvider { service } => Step::Reply(vec![
                (
                    id,
                    Response::ProviderRegistered {
                        provider_id: 7,
                        service: service.clone(),
                    },
                ),
                (
                    0,
                    Response::ServiceCall(spine_protocol::ServiceCall {
                        correlation: 42,
                        service,
                        interaction: "urn:x/Y".into(),
                        operation: "get".into(),
                        asid: "1".into(),
                        ods: "X26".into(),
                        message_id: None,
                        body: Bytes::from_static(b"call"),
                    }),
                ),
            ]),
            Request::ProviderReply { .. } => reply(Response::ProviderReplyOk),
        }
    }

    fn flush_held(&mut self, stats: &Stats) -> Vec<(u64, Response)> {
        stats.held.store(0, Ordering::SeqCst);
        let mut held = std::mem::take(&mut self.held);
        held.reverse();
        held
    }

    fn pushes(&mut self, script: &Script) -> Vec<(u64, Response)> {
        let mut out = Vec::new();
        while let Some(window) = &mut self.sub {
            if self.pushed >= script.pushes || !window.try_take() {
                break;
            }
            self.pushed += 1;
            out.push((
                0,
                Response::Push {
                    envelope: envelope(),
                    order: self.pushed as u64,
                    body: None,
                },
            ));
        }
        out
    }
}

/// Serves one byte stream until the peer finishes it or the script closes
/// it; finishes the write side on the way out.
pub(crate) async fn serve<R, W>(
    mut read: R,
    mut write: W,
    state: &mut ConnState,
    script: &Script,
    stats: &Stats,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut codec = ServerCodec::default();
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    let end = 'conn: loop {
        loop {
            match codec.decode(&mut buf) {
                Ok(Some((id, request))) => match state.handle(script, stats, id, request) {
                    Step::Reply(answers) => {
                        for (id, answer) in answers {
                            codec.encode(id, &answer, &mut out).unwrap();
                        }
                    }
                    Step::Garbage => out.extend_from_slice(b"\x00\x00\x00\x03xyz"),
                    Step::Close => break 'conn End::Close,
                },
                Ok(None) => break,
                Err(e) => {
                    codec
                        .encode(e.reply_id(), &Response::Error(e.to_wire()), &mut out)
                        .unwrap();
                    if e.is_fatal() {
                        let _ = write.write_all(&out).await;
                        break 'conn End::Close;
                    }
                }
            }
        }
        for (id, push) in state.pushes(script) {
            codec.encode(id, &push, &mut out).unwrap();
        }
        if !out.is_empty() {
            if write.write_all(&out).await.is_err() || write.flush().await.is_err() {
                break End::Eof;
            }
            out.clear();
        }
        let read = match script.flush_idle {
            Some(idle) if !state.held.is_empty() => {
                match tokio::time::timeout(idle, read.read_buf(&mut buf)).await {
                    Ok(read) => read,
                    Err(_) => {
                        for (id, answer) in state.flush_held(stats) {
                            codec.encode(id, &answer, &mut out).unwrap();
                        }
                        continue;
                    }
                }
            }
            _ => read.read_buf(&mut buf).await,
        };
        match read {
            Ok(0) | Err(_) => break End::Eof,
            Ok(_) => {}
        }
    };
    if end == End::Eof && state.sub.take().is_some() {
        // The end of a subscribed stream counts as UNSUBSCRIBE.
        stats.unsubscribes.fetch_add(1, Ordering::SeqCst);
    }
    if end == End::Eof {
        let _ = write.shutdown().await;
    }
    end
}

/// A running fake server.
pub(crate) struct FakeServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    pub(crate) fn endpoint(&self, scheme: &str) -> Endpoint {
        Endpoint::parse(&format!("{scheme}://{}", self.addr)).unwrap()
    }
}

/// A fake server on loopback TCP, with TLS if `tls` is given.
pub(crate) async fn start_tcp(
    script: Script,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> FakeServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let task_stats = Arc::clone(&stats);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            task_stats.connections.fetch_add(1, Ordering::SeqCst);
            let (script, stats, acceptor) =
                (script.clone(), Arc::clone(&task_stats), acceptor.clone());
            tokio::spawn(async move {
                let mut state = ConnState::default();
                match acceptor {
                    None => {
                        let (read, write) = tcp.into_split();
                        serve(read, write, &mut state, &script, &stats).await;
                    }
                    Some(acceptor) => {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let (read, write) = tokio::io::split(tls);
                        serve(read, write, &mut state, &script, &stats).await;
                    }
                }
            });
        }
    });
    FakeServer { addr, stats, task }
}

/// A fake server on loopback QUIC, following the stream convention in the
/// crate docs.
pub(crate) async fn start_quic(script: Script, tls: Arc<rustls::ServerConfig>) -> FakeServer {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let server_config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let endpoint = quinn::Endpoint::server(server_config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let task_stats = Arc::clone(&stats);
    let task = tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            let (script, stats) = (script.clone(), Arc::clone(&task_stats));
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else {
                    return;
                };
                stats.connections.fetch_add(1, Ordering::SeqCst);
                // HELLO on the first stream.
                let Ok((send, recv)) = conn.accept_bi().await else {
                    return;
                };
                let mut hello = ConnState::default();
                serve(recv, send, &mut hello, &script, &stats).await;
                if !hello.authed {
                    // Leave the close to the client, so the ERROR arrives.
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
                    return;
                }
                while let Ok((send, recv)) = conn.accept_bi().await {
                    let (script, stats, conn) = (script.clone(), Arc::clone(&stats), conn.clone());
                    tokio::spawn(async move {
                        let mut state = ConnState {
                            authed: true,
                            ..ConnState::default()
                        };
                        if serve(recv, send, &mut state, &script, &stats).await == End::Close {
                            conn.close(quinn::VarInt::from_u32(1), b"scripted close");
                        }
                    });
                }
            });
        }
    });
    FakeServer { addr, stats, task }
}

/// Test certificates: a self-signed server certificate (its own CA) for
/// `localhost` and `127.0.0.1`, and a self-signed client certificate.
pub(crate) struct Pki {
    _dir: tempfile::TempDir,
    pub ca_file: PathBuf,
    pub other_ca_file: PathBuf,
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
    client_cert: CertificateDer<'static>,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let server =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let client = rcgen::generate_simple_self_signed(vec!["client.example".into()]).unwrap();
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Pki {
            ca_file: write("ca.pem", server.cert.pem()),
            other_ca_file: write("other-ca.pem", other.cert.pem()),
            client_cert_file: write("client.pem", client.cert.pem()),
            client_key_file: write("client.key", client.key_pair.serialize_pem()),
            server_cert: server.cert.der().clone(),
            server_key: server.key_pair.serialize_der(),
            client_cert: client.cert.der().clone(),
            _dir: dir,
        }
    }

    /// The server's rustls configuration (TLS 1.3, ALPN `spine/1`),
    /// requiring the test client certificate if `require_client_cert`.
    pub(crate) fn server_config(&self, require_client_cert: bool) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.client_cert.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut config = builder
            .with_single_cert(vec![self.server_cert.clone()], key)
            .unwrap();
        config.alpn_protocols = vec![crate::ALPN.to_vec()];
        Arc::new(config)
    }
}
