//! The client commands: `spine send`, `inbox`, `get`, `ack`, `track`,
//! `lookup` and `watch`, over the native protocol (TCP, TLS or QUIC)
//! through `spine-client`.
//!
//! Invariants:
//! - Output is readable text by default and one JSON document (or one
//!   JSON line per pushed message for `watch`) with `--json`; errors go to
//!   stderr as `spine: error [CODE]: ...`, with the server's stable code
//!   when the server refused.
//! - Exit status: 0 ok, 1 usage, 3 connection/runtime failure, 5 the
//!   server refused the request.
//! - Large files are sent chunk by chunk (`--chunk-size`) and downloaded
//!   chunk by chunk into the output file, so neither side holds the whole
//!   message in memory.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use serde_json::json;
use spine_client::{Client, ClientConfig, ClientError, Endpoint, TlsOptions};
use spine_core::envelope::Envelope;
use spine_core::ids::{LocalId, MailboxId, MessageId, OdsCode, WorkflowId};
use spine_core::ErrorCode;
use spine_protocol::{Limits, SendHeader};

use crate::exit::{write_stdout, Exit, Failure};

/// How to reach and authenticate with a node (shared by every command).
#[derive(Debug, Args)]
pub struct Connection {
    /// native://HOST:PORT (TCP), natives://HOST:PORT (TLS) or quic://HOST:PORT [env: SPINE_SERVER] [default: native://127.0.0.1:7701]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Your mailbox id [env: SPINE_MAILBOX]
    #[arg(long, value_name = "MAILBOX")]
    pub mailbox: Option<String>,
    /// Your mailbox password [env: SPINE_PASSWORD]
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// CA certificate (PEM) to verify the server with (TLS and QUIC) [env: SPINE_CA]
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM), when the server requires one [env: SPINE_CERT]
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Client certificate's private key (PEM) [env: SPINE_KEY]
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Name to verify the server certificate against (default: the host)
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Seconds to wait for the server (connect and each request)
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// `spine send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Recipient mailbox
    #[arg(long, value_name = "MAILBOX")]
    pub to: String,
    /// Workflow id
    #[arg(long, value_name = "WORKFLOW")]
    pub workflow: String,
    /// The file to send (or use --data)
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub file: Option<PathBuf>,
    /// The message text to send (or use --file)
    #[arg(long, value_name = "TEXT")]
    pub data: Option<String>,
    /// Subject
    #[arg(long)]
    pub subject: Option<String>,
    /// Your own reference for the message
    #[arg(long, value_name = "ID")]
    pub local_id: Option<String>,
    /// File name to record (default: the --file's name)
    #[arg(long, value_name = "NAME")]
    pub file_name: Option<String>,
    /// Content type
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Idempotency key: a repeat with the same key returns the first message id
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Split the file into chunks of this many bytes
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub chunk_size: u64,
}

/// `spine inbox`.
#[derive(Debug, Args)]
pub struct InboxArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Only workflows matching this MESH workflow filter
    #[arg(long, value_name = "FILTER")]
    pub workflow_filter: Option<String>,
    /// Most messages to list
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: u32,
}

/// `spine get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// The message id
    pub message_id: String,
    /// Write the content here (default: stdout, or base64-free text in --json)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `spine ack` and `spine track`.
#[derive(Debug, Args)]
pub struct MessageArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// The message id
    pub message_id: String,
}

/// `spine lookup`.
#[derive(Debug, Args)]
pub struct LookupArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Workflow id
    #[arg(long, value_name = "WORKFLOW")]
    pub workflow: String,
    /// Organisation (ODS code); omit to search every organisation
    #[arg(long, value_name = "ODS")]
    pub ods: Option<String>,
}

/// `spine watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Stop after this many messages (default: run until interrupted)
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Pushes the server may send ahead of us
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub credit: u32,
}

/// Which client command.
#[derive(Debug)]
pub enum ClientCommand<'a> {
    Send(&'a SendArgs),
    Inbox(&'a InboxArgs),
    Get(&'a GetArgs),
    Ack(&'a MessageArgs),
    Track(&'a MessageArgs),
    Lookup(&'a LookupArgs),
    Watch(&'a WatchArgs),
}

pub type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// Runs a client command to completion.
pub fn run(command: ClientCommand<'_>, env: Env<'_>) -> Result<Exit, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::plain(
                Exit::Runtime,
                "RUNTIME_START_FAILED",
                format!("cannot start: {e}"),
            )
        })?;
    runtime.block_on(async move {
        match command {
            ClientCommand::Send(a) => send(a, env).await,
            ClientCommand::Inbox(a) => inbox(a, env).await,
            ClientCommand::Get(a) => get(a, env).await,
            ClientCommand::Ack(a) => ack(a, env).await,
            ClientCommand::Track(a) => track(a, env).await,
            ClientCommand::Lookup(a) => lookup(a, env).await,
            ClientCommand::Watch(a) => watch(a, env).await,
        }
    })
}

fn usage(code: &'static str, message: impl Into<String>) -> Failure {
    Failure::plain(Exit::Usage, code, message)
}

fn parsed<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, Failure> {
    r.map_err(|e| usage("CLI_ARGUMENT_INVALID", format!("{what}: {e}")))
}

/// [`failed`] for the service commands.
pub fn failed_client(e: ClientError) -> Failure {
    failed(e)
}

/// [`connect`] for the service commands.
pub async fn connect_client(c: &Connection, env: Env<'_>) -> Result<Client, Failure> {
    connect(c, env).await
}

/// Client errors: the server's refusals exit 5 with the server's code.
fn failed(e: ClientError) -> Failure {
    let exit = match &e {
        ClientError::Server(_) => Exit::Refused,
        ClientError::EndpointInvalid { .. } => Exit::Usage,
        _ => Exit::Runtime,
    };
    let code = match &e {
        ClientError::Server(w) => leak_name(&w.name),
        other => other.code(),
    };
    Failure::plain(exit, code, e.to_string())
}

/// The server's error names are a fixed vocabulary, but they arrive as
/// text: map the common ones to static codes and the rest to a generic one.
fn leak_name(name: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "AUTH_FAILED",
        "MSG_NOT_FOUND",
        "MSG_NOT_RECIPIENT",
        "MSG_NOT_SENDER",
        "MSG_WRONG_STATUS",
        "MSG_LIMIT",
        "DIR_RECIPIENT_UNREGISTERED",
        "DIR_RECIPIENT_INACTIVE",
        "DIR_WORKFLOW_NOT_REGISTERED",
        "DIR_SENDER_UNKNOWN",
        "NOT_AUTHENTICATED",
        "NODE_SHUTTING_DOWN",
        "NODE_LOG_FAILED",
        "BUSY",
    ];
    KNOWN
        .iter()
        .find(|k| **k == name)
        .copied()
        .unwrap_or("SERVER_REFUSED")
}

fn setting(flag: &Option<String>, env: Env<'_>, var: &str) -> Option<String> {
    flag.clone()
        .or_else(|| env(var).and_then(|v| v.into_string().ok()))
}

fn setting_path(flag: &Option<PathBuf>, env: Env<'_>, var: &str) -> Option<PathBuf> {
    flag.clone().or_else(|| env(var).map(PathBuf::from))
}

async fn connect(c: &Connection, env: Env<'_>) -> Result<Client, Failure> {
    let server = setting(&c.server, env, "SPINE_SERVER")
        .unwrap_or_else(|| "native://127.0.0.1:7701".to_string());
    let endpoint = Endpoint::parse(&server).map_err(failed)?;
    let mailbox = setting(&c.mailbox, env, "SPINE_MAILBOX").ok_or_else(|| {
        usage(
            "CLI_MAILBOX_MISSING",
            "give your mailbox with --mailbox (or SPINE_MAILBOX)",
        )
    })?;
    let mailbox = parsed("--mailbox", MailboxId::parse(&mailbox))?;
    let password = setting(&c.password, env, "SPINE_PASSWORD").ok_or_else(|| {
        usage(
            "CLI_PASSWORD_MISSING",
            "give your mailbox password with --password (or SPINE_PASSWORD)",
        )
    })?;
    let timeout = Duration::from_secs(c.timeout.max(1));
    let config = ClientConfig {
        endpoint,
        mailbox,
        password,
        client_name: format!("spine-cli/{}", env!("CARGO_PKG_VERSION")),
        tls: TlsOptions {
            ca_file: setting_path(&c.ca, env, "SPINE_CA"),
            client_cert: setting_path(&c.cert, env, "SPINE_CERT"),
            client_key: setting_path(&c.key, env, "SPINE_KEY"),
            server_name: c.server_name.clone(),
        },
        connect_timeout: timeout,
        request_timeout: timeout,
        max_in_flight: 64,
        coalesce_sends: spine_client::DEFAULT_COALESCE_SENDS,
        limits: Limits::default(),
    };
    Client::connect(config).await.map_err(failed)
}

fn json_out(value: &serde_json::Value) -> Result<(), Failure> {
    write_stdout(&format!("{value}\n"))
}

fn envelope_json(e: &Envelope) -> serde_json::Value {
    serde_json::to_value(e).unwrap_or(serde_json::Value::Null)
}

async fn send(a: &SendArgs, env: Env<'_>) -> Result<Exit, Failure> {
    let recipient = parsed("--to", MailboxId::parse(&a.to))?;
    let workflow_id = parsed("--workflow", WorkflowId::parse(&a.workflow))?;
    if a.chunk_size == 0 || a.chunk_size > 16 << 20 {
        return Err(usage(
            "CLI_ARGUMENT_INVALID",
            "--chunk-size must be 1 to 16777216 bytes",
        ));
    }
    let (mut file, len) = match (&a.file, &a.data) {
        (Some(path), None) => {
            let f = std::fs::File::open(path).map_err(|e| {
                usage(
                    "CLI_FILE_UNREADABLE",
                    format!("cannot open {}: {e}", path.display()),
                )
            })?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            (Some(f), len)
        }
        (None, Some(text)) => (None, text.len() as u64),
        _ => {
            return Err(usage(
                "CLI_CONTENT_MISSING",
                "give the content with --file PATH or --data TEXT",
            ))
        }
    };
    let chunks = len.div_ceil(a.chunk_size).max(1);
    let total_chunks = u32::try_from(chunks).map_err(|_| {
        usage(
            "CLI_ARGUMENT_INVALID",
            "too many chunks; raise --chunk-size",
        )
    })?;
    let mut header = SendHeader::simple(recipient, workflow_id);
    header.subject = a.subject.clone();
    header.local_id = match &a.local_id {
        Some(l) => Some(parsed("--local-id", LocalId::parse(l))?),
        None => None,
    };
    header.file_name = a.file_name.clone().or_else(|| {
        a.file
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
    });
    header.content_type = a.content_type.clone();
    header.idempotency_key = a.idempotency_key.clone();
    header.total_chunks = total_chunks;
    let client = connect(&a.conn, env).await?;
    // Chunk n (1-based) is bytes (n-1)*chunk_size.. of the content.
    let chunk_len = |n: u64| len.saturating_sub((n - 1) * a.chunk_size).min(a.chunk_size) as usize;
    let first = read_chunk(&mut file, a.data.as_deref(), 0, chunk_len(1)).await?;
    let ok = client.send(header, first).await.map_err(failed)?;
    for n in 2..=chunks {
        let start = (n - 1) * a.chunk_size;
        let body = read_chunk(&mut file, a.data.as_deref(), start as usize, chunk_len(n)).await?;
        client
            .send_chunk(ok.message_id, n as u32, body)
            .await
            .map_err(failed)?;
    }
    if a.conn.json {
        json_out(&json!({
            "message_id": ok.message_id.as_str(),
            "duplicate": ok.duplicate,
            "chunks": total_chunks,
            "bytes": len,
        }))?;
    } else {
        write_stdout(&format!(
            "sent {} ({len} bytes in {total_chunks} chunk{}){}\n",
            ok.message_id,
            if total_chunks == 1 { "" } else { "s" },
            if ok.duplicate {
                "; already sent with this idempotency key"
            } else {
                ""
            }
        ))?;
    }
    Ok(Exit::Ok)
}

async fn read_chunk(
    file: &mut Option<std::fs::File>,
    data: Option<&str>,
    start: usize,
    size: usize,
) -> Result<Bytes, Failure> {
    match file {
        Some(f) => {
            let mut buf = vec![0u8; size];
            f.read_exact(&mut buf).map_err(|e| {
                Failure::plain(
                    Exit::Runtime,
                    "CLI_FILE_UNREADABLE",
                    format!("cannot read the file: {e}"),
                )
            })?;
            Ok(Bytes::from(buf))
        }
        None => {
            let text = data.unwrap_or("").as_bytes();
            let end = (start + size).min(text.len());
            Ok(Bytes::copy_from_slice(text.get(start..end).unwrap_or(&[])))
        }
    }
}

async fn inbox(a: &InboxArgs, env: Env<'_>) -> Result<Exit, Failure> {
    let client = connect(&a.conn, env).await?;
    let page = client
        .list_inbox(a.workflow_filter.clone(), a.limit, None)
        .await
        .map_err(failed)?;
    if a.conn.json {
        let messages: Vec<_> = page
            .messages
            .iter()
            .map(|m| {
                json!({
                    "message_id": m.message_id.as_str(),
                    "sender": m.sender.as_str(),
                    "workflow_id": m.workflow_id.as_str(),
                    "message_type": m.message_type.as_str(),
                    "total_chunks": m.total_chunks,
                    "created_at": m.created_at.to_rfc3339(),
                })
            })
            .collect();
        json_out(&json!({"messages": messages, "total": page.total}))?;
    } else {
        let mut text = format!("{} message(s) waiting\n", page.total);
        for m in &page.messages {
            text.push_str(&format!(
                "{}  from {}  {}  {}\n",
                m.message_id,
                m.sender,
                m.workflow_id,
                m.created_at.to_rfc3339()
            ));
        }
        write_stdout(&text)?;
    }
    Ok(Exit::Ok)
}

async fn get(a: &GetArgs, env: Env<'_>) -> Result<Exit, Failure> {
    let id = parsed("message id", MessageId::parse(&a.message_id))?;
    let client = connect(&a.conn, env).await?;
    let first = client.download(id, 1).await.map_err(failed)?;
    let envelope = first.envelope.clone();
    let total = envelope.total_chunks.max(1);
    let mut sink: Box<dyn std::io::Write> = match &a.out {
        Some(path) => Box::new(std::fs::File::create(path).map_err(|e| {
            usage(
                "CLI_FILE_UNWRITABLE",
                format!("cannot create {}: {e}", path.display()),
            )
        })?),
        None => Box::new(std::io::stdout()),
    };
    let write_err = |e: std::io::Error| {
        Failure::plain(
            Exit::Runtime,
            "CLI_OUTPUT_FAILED",
            format!("cannot write the content: {e}"),
        )
    };
    let mut bytes = first.body.len() as u64;
    let to_stdout = a.out.is_none() && !a.conn.json;
    let mut text = Vec::new();
    if a.out.is_some() || to_stdout {
        sink.write_all(&first.body).map_err(write_err)?;
    } else {
        text.extend_from_slice(&first.body);
    }
    for n in 2..=total {
        let chunk = client.download(id, n).await.map_err(failed)?;
        bytes += chunk.body.len() as u64;
        if a.out.is_some() || to_stdout {
            sink.write_all(&chunk.body).map_err(write_err)?;
        } else {
            text.extend_from_slice(&chunk.body);
        }
    }
    sink.flush().map_err(write_err)?;
    if a.conn.json {
        let mut doc = json!({
            "envelope": envelope_json(&envelope),
            "bytes": bytes,
        });
        if a.out.is_none() {
            doc["content"] = json!(String::from_utf8_lossy(&text));
        }
        json_out(&doc)?;
    } else if let Some(path) = &a.out {
        write_stdout(&format!(
            "{} from {}: {bytes} bytes written to {}\n",
            id,
            envelope.sender,
            path.display()
        ))?;
    }
    Ok(Exit::Ok)
}

async fn ack(a: &MessageArgs, env: Env<'_>) -> Result<Exit, Failure> {
    let id = parsed("message id", MessageId::parse(&a.message_id))?;
    let client = connect(&a.conn, env).await?;
    client.acknowledge(id).await.map_err(failed)?;
    if a.conn.json {
        json_out(&json!({"message_id": id.as_str(), "acknowledged": true}))?;
    } else {
        write_stdout(&format!("acknowledged {id}\n"))?;
    }
    Ok(Exit::Ok)
}

async fn track(a: &MessageArgs, env: Env<'_>) -> Result<Exit, Failure> {
    let id = parsed("message id", MessageId::parse(&a.message_id))?;
    let client = connect(&a.conn, env).await?;
    let info = client.track(id).await.map_err(failed)?;
    if a.conn.json {
        json_out(&json!({
            "message_id": id.as_str(),
            "status": info.status.to_string(),
            "recipient": info.envelope.recipient.as_str(),
            "acknowledged_at": info.acknowledged_at.map(|t| t.to_rfc3339()),
            "expired_at": info.expired_at.map(|t| t.to_rfc3339()),
            "envelope": envelope_json(&info.envelope),
        }))?;
    } else {
        let mut text = format!("{id}: {} (to {})\n", info.status, info.envelope.recipient);
        if let Some(at) = info.acknowledged_at {
            text.push_str(&format!("acknowledged at {}\n", at.to_rfc3339()));
        }
        if let Some(at) = info.expired_at {
            text.push_str(&format!("expired at {}\n", at.to_rfc3339()));
        }
        write_stdout(&text)?;
    }
    Ok(Exit::Ok)
}

async fn lookup(a: &LookupArgs, env: Env<'_>) -> Result<Exit, Failure> {
    let workflow = parsed("--workflow", WorkflowId::parse(&a.workflow))?;
    let ods = match &a.ods {
        Some(o) => Some(parsed("--ods", OdsCode::parse(o))?),
        None => None,
    };
    let client = connect(&a.conn, env).await?;
    let found = client.lookup(ods, workflow).await.map_err(failed)?;
    if a.conn.json {
        let list: Vec<_> = found
            .iter()
            .map(|m| {
                json!({
                    "mailbox_id": m.mailbox_id.as_str(),
                    "mailbox_name": m.mailbox_name,
                    "ods_code": m.ods_code.as_str(),
                })
            })
            .collect();
        json_out(&json!({"results": list}))?;
    } else {
        let mut text = format!("{} mailbox(es)\n", found.len());
        for m in &found {
            text.push_str(&format!(
                "{}  {}  ({})\n",
                m.mailbox_id, m.mailbox_name, m.ods_code
            ));
        }
        write_stdout(&text)?;
    }
    Ok(Exit::Ok)
}

async fn watch(a: &WatchArgs, env: Env<'_>) -> Result<Exit, Failure> {
    let client = connect(&a.conn, env).await?;
    let mut sub = client.subscribe(a.credit.max(1)).await.map_err(failed)?;
    if !a.conn.json {
        write_stdout(&format!(
            "watching {} for new messages\n",
            client.session().mailbox
        ))?;
    }
    let mut seen = 0u64;
    while a.count.is_none_or(|n| seen < n) {
        let Some(push) = sub.next().await else {
            return Err(Failure::plain(
                Exit::Runtime,
                "CLI_WATCH_ENDED",
                "the connection to the server ended; run `spine watch` again and `spine inbox` \
                 to catch up",
            ));
        };
        seen += 1;
        let e = &push.envelope;
        if a.conn.json {
            json_out(
                &json!({"message_id": e.message_id.as_str(), "sender": e.sender.as_str(), "workflow_id": e.workflow_id.as_str(), "order": push.order}),
            )?;
        } else {
            write_stdout(&format!(
                "{}  from {}  {}\n",
                e.message_id, e.sender, e.workflow_id
            ))?;
        }
        let _ = std::io::stdout().flush();
    }
    Ok(Exit::Ok)
}
