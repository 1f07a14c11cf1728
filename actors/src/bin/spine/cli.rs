//! The command line: subcommands, flags and the help texts.
//!
//! Setting flags are plain optional values here; parsing them into the
//! configuration (and the environment layer beneath them) happens in
//! `config`, so a bad value gets the same message whether it came from a
//! flag, a variable or the file. The tests check that every setting in
//! `config::Setting::ALL` has its flag here and that the flag's help names
//! its environment variable.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use spine_core::wal::WalConfig;

use crate::config::Setting;

const LONG_ABOUT: &str = "\
Spine: a message router speaking the NHS MESH mailbox protocol.

Exit status:
  0  success: `serve` stopped cleanly on SIGINT or SIGTERM (or printed its
     config); `wal inspect` verified every segment
  1  usage or configuration error: a bad flag, config file, environment
     variable or directory file, a nonexistent directory to inspect, a
     metrics, native protocol or MESH address that is not loopback or
     already in use, or TLS material that cannot be loaded
  2  storage refused: the write-ahead log is corrupt (error code
     WAL_CORRUPT and friends), or the data directory is locked by another
     running node; nothing was modified
  3  runtime failure: e.g. OS randomness unavailable, an I/O error while
     running or inspecting, a failed shutdown, or the node failed because
     an actor kept failing (NODE_FAILED)
  4  `wal inspect` only: the log ends in a torn tail, which the next
     `serve` would truncate (an interrupted write that was never
     acknowledged)

Errors are printed to stderr as `spine: error [CODE]: message`, where CODE
is stable and greppable.";

const SERVE_ABOUT: &str = "\
Run a node: load the mailbox directory, open and recover the data
directory, then serve until SIGINT or SIGTERM, when it drains, syncs and
exits 0.

Every setting can come from four places; later ones win:
  built-in default < config file (--config / SPINE_CONFIG)
    < environment variable (SPINE_*; empty counts as unset) < flag

The config file is TOML with sections [storage], [directory], [runtime],
[metrics], [network], [mesh] and [log]; unknown keys are errors. `--print-config` shows the effective settings and
where each came from. The directory is either the mesh-sandbox JSONL pair
(--mailboxes and --workflows) or a native TOML file (--directory); a layer
naming one form replaces the other form from lower layers. With neither,
the node runs on the embedded demo directory (development only).

Prometheus metrics are served at http://<metrics listen>/metrics (default
127.0.0.1:9701). The endpoint has no authentication, so a non-loopback
address is refused unless --metrics-allow-remote is given.

The native protocol is served over TCP (default 127.0.0.1:7701; TLS when
--tls-cert and --tls-key are given) and over QUIC (default 127.0.0.1:7702,
UDP; TLS 1.3 only, so it stays off without a certificate). Non-loopback
addresses are refused unless --network-allow-remote is given.

The MESH REST API is served over HTTP/1.1 (default 127.0.0.1:8701; HTTPS
with the same --tls-cert and --tls-key). A non-loopback --mesh-listen is
refused unless --mesh-allow-remote true is given, and then needs TLS (or
--mesh-allow-plain-http true behind a TLS proxy). The shared key
(--shared-key, SPINE_SHARED_KEY) is a secret: --print-config does not
print it unless it is the public default.";

const INSPECT_ABOUT: &str = "\
Verify a data directory's write-ahead log without modifying it: every
segment's header, every record's checksums and the sequence numbering.
Takes no lock, so it may be run beside a live node (whose newest segment
may then show an in-flight write as a torn tail).

Exit status: 0 all verified, 4 only a torn tail (recovery would truncate
it), 2 corruption (recovery would refuse to start), 1 not a directory,
3 an I/O error while reading.";

/// `spine`.
#[derive(Debug, Parser)]
#[command(
    name = "spine",
    version,
    about = "Spine: a MESH-compatible message router for the NHS",
    long_about = LONG_ABOUT
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node until SIGINT or SIGTERM.
    #[command(long_about = SERVE_ABOUT)]
    Serve(Box<ServeArgs>),
    /// Write-ahead log tools.
    Wal {
        /// The WAL tool to run.
        #[command(subcommand)]
        command: WalCommand,
    },
    /// Certificate tools: development certificates for TLS and mutual TLS.
    Certs {
        /// The certificate tool to run.
        #[command(subcommand)]
        command: crate::certs::CertsCommand,
    },
    /// Send a message (a file or text) to another mailbox.
    Send(Box<crate::client_cmd::SendArgs>),
    /// List the messages waiting in your inbox.
    Inbox(Box<crate::client_cmd::InboxArgs>),
    /// Download a message (every chunk) from your inbox.
    Get(Box<crate::client_cmd::GetArgs>),
    /// Acknowledge a message: it leaves your inbox.
    Ack(Box<crate::client_cmd::MessageArgs>),
    /// Track a message you sent.
    Track(Box<crate::client_cmd::MessageArgs>),
    /// Look up the mailboxes that receive a workflow.
    Lookup(Box<crate::client_cmd::LookupArgs>),
    /// Print messages as they arrive in your inbox (push, no polling).
    Watch(Box<crate::client_cmd::WatchArgs>),
    /// Send a request to a national service and print its response.
    Request(Box<crate::service_cmd::RequestArgs>),
    /// Personal Demographics Service: get, search and update patients.
    Pds {
        /// The PDS operation.
        #[command(subcommand)]
        command: Box<crate::service_cmd::PdsCommand>,
    },
    /// Summary Care Record: upload a replacement summary, get the latest.
    Scr {
        /// The SCR operation.
        #[command(subcommand)]
        command: Box<crate::service_cmd::ScrCommand>,
    },
    /// Electronic Prescription Service: create, release, dispense, claim.
    Eps {
        /// The EPS operation.
        #[command(subcommand)]
        command: Box<crate::service_cmd::EpsCommand>,
    },
    /// Serve a service as an external provider (echoes each request; a demonstration).
    Provide(Box<crate::service_cmd::ProvideArgs>),
}

/// `spine wal ...`.
#[derive(Debug, Subcommand)]
pub enum WalCommand {
    /// Verify a log read-only and report each segment.
    #[command(long_about = INSPECT_ABOUT)]
    Inspect(InspectArgs),
}

/// `spine serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file [env: SPINE_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<OsString>,
    /// Print the effective configuration as TOML (with where each value came from) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// The settings.
    #[command(flatten)]
    pub settings: SettingFlags,
}

/// One flag per setting; each overrides its environment variable.
#[derive(Debug, Default, Args)]
pub struct SettingFlags {
    /// Data directory holding the log; created if missing [env: SPINE_DATA_DIR] [default: spine-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<OsString>,
    /// Segment size before rotation, 4096..=4294967296 [env: SPINE_SEGMENT_BYTES] [default: 134217728]
    #[arg(long, value_name = "BYTES")]
    pub segment_bytes: Option<OsString>,
    /// Largest record (a MESH chunk must fit one), 1..=1073741824 [env: SPINE_MAX_RECORD_BYTES] [default: 134217728]
    #[arg(long, value_name = "BYTES")]
    pub max_record_bytes: Option<OsString>,
    /// Most records per group commit, 1..=1048576 [env: SPINE_MAX_BATCH_RECORDS] [default: 4096]
    #[arg(long, value_name = "N")]
    pub max_batch_records: Option<OsString>,
    /// Most bytes per group commit, 1..=1073741824 [env: SPINE_MAX_BATCH_BYTES] [default: 8388608]
    #[arg(long, value_name = "BYTES")]
    pub max_batch_bytes: Option<OsString>,
    /// Most appends queued or in flight before appenders wait, 1..=16777216 [env: SPINE_MAX_IN_FLIGHT] [default: 65536]
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<OsString>,
    /// Seconds an accepted message may wait in an inbox before it expires [env: SPINE_INBOX_EXPIRY_SECS] [default: 432000]
    #[arg(long, value_name = "SECS")]
    pub inbox_expiry_secs: Option<OsString>,
    /// Seconds after creation a message is purged; at least the inbox expiry [env: SPINE_PURGE_AFTER_SECS] [default: 2592000]
    #[arg(long, value_name = "SECS")]
    pub purge_after_secs: Option<OsString>,
    /// Most messages a partition keeps at once, in any status (each counts until purged; more sends are refused MSG_LIMIT), 1..=1073741824 [env: SPINE_MAX_MESSAGES] [default: 50000000]
    #[arg(long, value_name = "N")]
    pub max_messages: Option<OsString>,
    /// Most messages waiting in one inbox (more sends to it are refused MSG_LIMIT), 1 up to --max-messages [env: SPINE_MAX_INBOX_DEPTH] [default: 5000000]
    #[arg(long, value_name = "N")]
    pub max_inbox_depth: Option<OsString>,
    /// mesh-sandbox mailboxes.jsonl; needs --workflows [env: SPINE_MAILBOXES]
    #[arg(long, value_name = "FILE")]
    pub mailboxes: Option<OsString>,
    /// mesh-sandbox workflows.jsonl; needs --mailboxes [env: SPINE_WORKFLOWS]
    #[arg(long, value_name = "FILE")]
    pub workflows: Option<OsString>,
    /// Native TOML directory file (instead of --mailboxes/--workflows) [env: SPINE_DIRECTORY_TOML]
    #[arg(long, value_name = "FILE")]
    pub directory: Option<OsString>,
    /// PBKDF2 iterations for plaintext passwords in directory files, 1..=10000000 [env: SPINE_HASH_ITERATIONS] [default: 10000]
    #[arg(long, value_name = "N")]
    pub hash_iterations: Option<OsString>,
    /// Partition actors that mailboxes are hashed onto, 1..=4096 [env: SPINE_PARTITIONS] [default: 8]
    #[arg(long, value_name = "N")]
    pub partitions: Option<OsString>,
    /// Requests queued per partition before callers wait, 1..=1048576 [env: SPINE_PARTITION_QUEUE] [default: 4096]
    #[arg(long, value_name = "N")]
    pub partition_queue: Option<OsString>,
    /// Restarts of one actor allowed within the restart window before the node fails, 1..=1000 [env: SPINE_MAX_RESTARTS] [default: 5]
    #[arg(long, value_name = "N")]
    pub max_restarts: Option<OsString>,
    /// The window for --max-restarts, in seconds, 1..=86400 [env: SPINE_RESTART_WINDOW_SECS] [default: 60]
    #[arg(long, value_name = "SECS")]
    pub restart_window_secs: Option<OsString>,
    /// How often expired and purgeable messages are looked for, in milliseconds, 10..=3600000 [env: SPINE_EXPIRY_INTERVAL_MS] [default: 1000]
    #[arg(long, value_name = "MS")]
    pub expiry_interval_ms: Option<OsString>,
    /// Most messages expired or purged per partition per round, 1..=1000000 [env: SPINE_EXPIRY_BATCH] [default: 1000]
    #[arg(long, value_name = "N")]
    pub expiry_batch: Option<OsString>,
    /// Notifications buffered per subscriber before it is marked lagging, 1..=1048576 [env: SPINE_SUBSCRIBER_BUFFER] [default: 1024]
    #[arg(long, value_name = "N")]
    pub subscriber_buffer: Option<OsString>,
    /// Largest inbox page, 10..=5000 [env: SPINE_MAX_INBOX_PAGE] [default: 5000]
    #[arg(long, value_name = "N")]
    pub max_inbox_page: Option<OsString>,
    /// How long a request waits for a restarting partition, in milliseconds, 1..=600000 [env: SPINE_REQUEST_WAIT_MS] [default: 30000]
    #[arg(long, value_name = "MS")]
    pub request_wait_ms: Option<OsString>,
    /// How long shutdown waits for requests in progress, in milliseconds, 1..=600000 [env: SPINE_SHUTDOWN_DRAIN_MS] [default: 30000]
    #[arg(long, value_name = "MS")]
    pub shutdown_drain_ms: Option<OsString>,
    /// How often the log is checked for compaction, in milliseconds, 100..=3600000 [env: SPINE_COMPACTION_CHECK_MS] [default: 10000]
    #[arg(long, value_name = "MS")]
    pub compaction_check_ms: Option<OsString>,
    /// Compact only while the log is larger than this, 0..=1099511627776 [env: SPINE_COMPACTION_MIN_LOG_BYTES] [default: 268435456]
    #[arg(long, value_name = "BYTES")]
    pub compaction_min_log_bytes: Option<OsString>,
    /// ...and larger than this many times the live message bytes, 1..=100 [env: SPINE_COMPACTION_MAX_AMPLIFICATION] [default: 2]
    #[arg(long, value_name = "N")]
    pub compaction_max_amplification: Option<OsString>,
    /// Let the heap use transparent huge pages (latency spikes on first touch): true or false (alone: true) [env: SPINE_HUGE_PAGES] [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub huge_pages: Option<OsString>,
    /// Serve Prometheus metrics: true or false (alone: true) [env: SPINE_METRICS_ENABLED] [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub metrics_enabled: Option<OsString>,
    /// Metrics endpoint address, IP:PORT; loopback unless --metrics-allow-remote [env: SPINE_METRICS_LISTEN] [default: 127.0.0.1:9701]
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<OsString>,
    /// Allow a non-loopback --metrics-listen (the endpoint has no authentication): true or false (alone: true) [env: SPINE_METRICS_ALLOW_REMOTE] [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub metrics_allow_remote: Option<OsString>,
    /// Serve the native protocol over TCP (TLS when --tls-cert is given): true or false (alone: true) [env: SPINE_NATIVE_ENABLED] [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub native_enabled: Option<OsString>,
    /// Native protocol TCP address, IP:PORT (port 0 picks a free one); loopback unless --network-allow-remote [env: SPINE_NATIVE_LISTEN] [default: 127.0.0.1:7701]
    #[arg(long, value_name = "ADDR")]
    pub native_listen: Option<OsString>,
    /// Serve the native protocol over QUIC (needs --tls-cert and --tls-key, else it stays off): true or false (alone: true) [env: SPINE_QUIC_ENABLED] [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub quic_enabled: Option<OsString>,
    /// QUIC (UDP) address, IP:PORT (port 0 picks a free one); loopback unless --network-allow-remote [env: SPINE_QUIC_LISTEN] [default: 127.0.0.1:7702]
    #[arg(long, value_name = "ADDR")]
    pub quic_listen: Option<OsString>,
    /// Allow non-loopback --native-listen and --quic-listen addresses (configure TLS too): true or false (alone: true) [env: SPINE_NETWORK_ALLOW_REMOTE] [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub network_allow_remote: Option<OsString>,
    /// PEM certificate chain for TLS (TCP and QUIC); needs --tls-key [env: SPINE_TLS_CERT]
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<OsString>,
    /// PEM private key of --tls-cert [env: SPINE_TLS_KEY]
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<OsString>,
    /// PEM CA bundle client certificates are verified against; needs --tls-cert [env: SPINE_CLIENT_CA]
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<OsString>,
    /// Require a client certificate (it authenticates its mailbox by CN); needs --client-ca: true or false (alone: true) [env: SPINE_REQUIRE_CLIENT_CERT] [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub require_client_cert: Option<OsString>,
    /// Most client connections at once, TCP and QUIC together (more are answered BUSY), 1..=1000000 [env: SPINE_MAX_CONNECTIONS] [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<OsString>,
    /// Most requests in flight per connection before it stops reading, 1..=65536 [env: SPINE_MAX_IN_FLIGHT_PER_CONNECTION] [default: 1024]
    #[arg(long, value_name = "N")]
    pub max_in_flight_per_connection: Option<OsString>,
    /// Largest native protocol frame payload, 1024..=67108864 [env: SPINE_MAX_PAYLOAD_BYTES] [default: 16777216]
    #[arg(long, value_name = "BYTES")]
    pub max_payload_bytes: Option<OsString>,
    /// Largest piece a download is streamed in, 1024 up to --max-payload-bytes [env: SPINE_DOWNLOAD_PIECE_BYTES] [default: 262144]
    #[arg(long, value_name = "BYTES")]
    pub download_piece_bytes: Option<OsString>,
    /// Time a new connection has for its TLS handshake and HELLO, in milliseconds, 100..=600000 [env: SPINE_HANDSHAKE_TIMEOUT_MS] [default: 10000]
    #[arg(long, value_name = "MS")]
    pub handshake_timeout_ms: Option<OsString>,
    /// Bytes one connection may make the server hold (frames being received and downloads not yet written), 1048576..=1099511627776 [env: SPINE_MAX_CONNECTION_BUFFERED_BYTES] [default: 67108864]
    #[arg(long, value_name = "BYTES")]
    pub max_connection_buffered_bytes: Option<OsString>,
    /// Largest body pushed with its notification to a subscriber that asks for bodies (0: never), 0..=65536 [env: SPINE_PUSH_INLINE_BYTES] [default: 65536]
    #[arg(long, value_name = "BYTES")]
    pub push_inline_bytes: Option<OsString>,
    /// Server name given to clients in HELLO_OK, 1 to 128 bytes [env: SPINE_SERVER_NAME] [default: spine]
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<OsString>,
    /// Serve the MESH REST API (HTTPS when --tls-cert is given): true or false (alone: true) [env: SPINE_MESH_ENABLED] [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub mesh_enabled: Option<OsString>,
    /// MESH API TCP address, IP:PORT (port 0 picks a free one); loopback unless --mesh-allow-remote [env: SPINE_MESH_LISTEN] [default: 127.0.0.1:8701]
    #[arg(long, value_name = "ADDR")]
    pub mesh_listen: Option<OsString>,
    /// NHSMESH shared key the MESH tokens' HMAC is keyed with, 1 to 1024 bytes; a secret, never printed: prefer the env var or config file, as flags show in the process list [env: SPINE_SHARED_KEY] [default: BackBone]
    #[arg(long, value_name = "KEY")]
    pub shared_key: Option<OsString>,
    /// Serve MESH as plain HTTP on a non-loopback --mesh-listen without TLS (only behind a TLS proxy: MESH carries patient data): true or false [env: SPINE_MESH_ALLOW_PLAIN_HTTP] [default: false]
    #[arg(long, value_name = "BOOL")]
    pub mesh_allow_plain_http: Option<OsString>,
    /// Allow a non-loopback --mesh-listen (configure TLS too): true or false [env: SPINE_MESH_ALLOW_REMOTE] [default: false]
    #[arg(long, value_name = "BOOL")]
    pub mesh_allow_remote: Option<OsString>,
    /// Add mesh-sandbox's admin endpoints (reset, report injection) to the MESH API, for testing: true or false (alone: true) [env: SPINE_SANDBOX] [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub sandbox: Option<OsString>,
    /// Largest MESH request body (one chunk, after decompression), 1024 up to --max-record-bytes minus 65536 [env: SPINE_MESH_MAX_REQUEST_BYTES] [default: 104857600]
    #[arg(long, value_name = "BYTES")]
    pub mesh_max_request_bytes: Option<OsString>,
    /// Most MESH request-body bytes buffered across all requests at once (more uploads wait), --mesh-max-request-bytes up to 1099511627776 [env: SPINE_MESH_MAX_BUFFERED_BYTES] [default: 1073741824]
    #[arg(long, value_name = "BYTES")]
    pub mesh_max_buffered_bytes: Option<OsString>,
    /// Most MESH client connections at once (more are closed at accept), 1..=1000000 [env: SPINE_MESH_MAX_CONNECTIONS] [default: 10000]
    #[arg(long, value_name = "N")]
    pub mesh_max_connections: Option<OsString>,
    /// How far a MESH token's timestamp may be from the server clock, in seconds, 60..=86400 [env: SPINE_MESH_TOKEN_WINDOW_SECS] [default: 7200]
    #[arg(long, value_name = "SECS")]
    pub mesh_token_window_secs: Option<OsString>,
    /// Most MESH token nonces remembered for replay checks (when full, new ones are answered 503 until old ones age out), 16..=100000000 [env: SPINE_MESH_REPLAY_NONCES] [default: 1000000]
    #[arg(long, value_name = "N")]
    pub mesh_replay_nonces: Option<OsString>,
    /// Time a MESH client has to send a request's headers (and for its TLS handshake), in milliseconds, 100..=3600000 [env: SPINE_MESH_HEADER_TIMEOUT_MS] [default: 10000]
    #[arg(long, value_name = "MS")]
    pub mesh_header_timeout_ms: Option<OsString>,
    /// Time a MESH client has to send a request's body, in milliseconds, 100..=3600000 [env: SPINE_MESH_BODY_TIMEOUT_MS] [default: 600000]
    #[arg(long, value_name = "MS")]
    pub mesh_body_timeout_ms: Option<OsString>,
    /// How long an idle MESH keep-alive connection is kept, in milliseconds, 100..=3600000 [env: SPINE_MESH_IDLE_TIMEOUT_MS] [default: 120000]
    #[arg(long, value_name = "MS")]
    pub mesh_idle_timeout_ms: Option<OsString>,
    /// Log line format [env: SPINE_LOG_FORMAT] [default: text]
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// Log filter: a level or directives like "info,spine_actors=debug" [env: SPINE_LOG_LEVEL] [default: info]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<OsString>,
    /// The service directory file (TOML); unset: the embedded demo set [env: SPINE_SERVICES_DIRECTORY]
    #[arg(long, value_name = "FILE")]
    pub services_directory: Option<OsString>,
    /// Seed of the synthetic PDS patients (keep it for a data directory's life), 0..=18446744073709551615 [env: SPINE_SERVICES_SEED] [default: 1]
    #[arg(long, value_name = "N")]
    pub services_seed: Option<OsString>,
    /// Number of synthetic PDS patients (9000000009 first), 1..=1000000 [env: SPINE_SERVICES_PATIENTS] [default: 1000]
    #[arg(long, value_name = "N")]
    pub services_patients: Option<OsString>,
    /// Largest service request or response body, 1024..=16777216 [env: SPINE_SERVICES_MAX_BODY_BYTES] [default: 1048576]
    #[arg(long, value_name = "BYTES")]
    pub services_max_body_bytes: Option<OsString>,
    /// Most requests in flight per service (more are refused SVC_BUSY), 1..=1048576 [env: SPINE_SERVICES_MAX_PENDING] [default: 4096]
    #[arg(long, value_name = "N")]
    pub services_max_pending: Option<OsString>,
    /// Most providers per service, 1..=1024 [env: SPINE_SERVICES_MAX_PROVIDERS] [default: 64]
    #[arg(long, value_name = "N")]
    pub services_max_providers: Option<OsString>,
    /// Most message ids remembered per service for duplicate elimination, max_pending..=16777216 [env: SPINE_SERVICES_MAX_REMEMBERED] [default: 65536]
    #[arg(long, value_name = "N")]
    pub services_max_remembered: Option<OsString>,
    /// Requests queued for one external provider's connection, 1..=1048576 [env: SPINE_SERVICES_PROVIDER_QUEUE] [default: 1024]
    #[arg(long, value_name = "N")]
    pub services_provider_queue: Option<OsString>,
    /// How long a provider that timed out is routed around, in milliseconds, 1..=3600000 [env: SPINE_SERVICES_COOLDOWN_MS] [default: 30000]
    #[arg(long, value_name = "MS")]
    pub services_cooldown_ms: Option<OsString>,
    /// How often service deadlines are checked, in milliseconds, 10..=60000 [env: SPINE_SERVICES_TICK_MS] [default: 100]
    #[arg(long, value_name = "MS")]
    pub services_tick_ms: Option<OsString>,
    /// Most SCR summaries held, 1..=67108864 [env: SPINE_SERVICES_MAX_SUMMARIES] [default: 1000000]
    #[arg(long, value_name = "N")]
    pub services_max_summaries: Option<OsString>,
    /// Most EPS prescriptions held, 1..=67108864 [env: SPINE_SERVICES_MAX_PRESCRIPTIONS] [default: 1000000]
    #[arg(long, value_name = "N")]
    pub services_max_prescriptions: Option<OsString>,
}

impl SettingFlags {
    /// The flags given, as (setting, raw value) pairs.
    pub fn given(&self) -> Vec<(Setting, OsString)> {
        let all: [(Setting, Option<OsString>); 76] = [
            (Setting::DataDir, self.data_dir.clone()),
            (Setting::SegmentBytes, self.segment_bytes.clone()),
            (Setting::MaxRecordBytes, self.max_record_bytes.clone()),
            (Setting::MaxBatchRecords, self.max_batch_records.clone()),
            (Setting::MaxBatchBytes, self.max_batch_bytes.clone()),
            (Setting::MaxInFlight, self.max_in_flight.clone()),
            (Setting::InboxExpiry, self.inbox_expiry_secs.clone()),
            (Setting::PurgeAfter, self.purge_after_secs.clone()),
            (Setting::MaxMessages, self.max_messages.clone()),
            (Setting::MaxInboxDepth, self.max_inbox_depth.clone()),
            (Setting::Mailboxes, self.mailboxes.clone()),
            (Setting::Workflows, self.workflows.clone()),
            (Setting::DirectoryToml, self.directory.clone()),
            (Setting::HashIterations, self.hash_iterations.clone()),
            (Setting::Partitions, self.partitions.clone()),
            (Setting::PartitionQueue, self.partition_queue.clone()),
            (Setting::MaxRestarts, self.max_restarts.clone()),
            (Setting::RestartWindowSecs, self.restart_window_secs.clone()),
            (Setting::ExpiryIntervalMs, self.expiry_interval_ms.clone()),
            (Setting::ExpiryBatch, self.expiry_batch.clone()),
            (Setting::SubscriberBuffer, self.subscriber_buffer.clone()),
            (Setting::MaxInboxPage, self.max_inbox_page.clone()),
            (Setting::RequestWaitMs, self.request_wait_ms.clone()),
            (Setting::ShutdownDrainMs, self.shutdown_drain_ms.clone()),
            (Setting::CompactionCheckMs, self.compaction_check_ms.clone()),
            (
                Setting::CompactionMinLogBytes,
                self.compaction_min_log_bytes.clone(),
            ),
            (
                Setting::CompactionMaxAmplification,
                self.compaction_max_amplification.clone(),
            ),
            (Setting::HugePages, self.huge_pages.clone()),
            (Setting::MetricsEnabled, self.metrics_enabled.clone()),
            (Setting::MetricsListen, self.metrics_listen.clone()),
            (
                Setting::MetricsAllowRemote,
                self.metrics_allow_remote.clone(),
            ),
            (Setting::NativeEnabled, self.native_enabled.clone()),
            (Setting::NativeListen, self.native_listen.clone()),
            (Setting::QuicEnabled, self.quic_enabled.clone()),
            (Setting::QuicListen, self.quic_listen.clone()),
            (
                Setting::NetworkAllowRemote,
                self.network_allow_remote.clone(),
            ),
            (Setting::TlsCert, self.tls_cert.clone()),
            (Setting::TlsKey, self.tls_key.clone()),
            (Setting::ClientCa, self.client_ca.clone()),
            (Setting::RequireClientCert, self.require_client_cert.clone()),
            (Setting::MaxConnections, self.max_connections.clone()),
            (
                Setting::MaxInFlightPerConnection,
                self.max_in_flight_per_connection.clone(),
            ),
            (Setting::MaxPayloadBytes, self.max_payload_bytes.clone()),
            (
                Setting::DownloadPieceBytes,
                self.download_piece_bytes.clone(),
            ),
            (
                Setting::HandshakeTimeoutMs,
                self.handshake_timeout_ms.clone(),
            ),
            (
                Setting::MaxConnectionBufferedBytes,
                self.max_connection_buffered_bytes.clone(),
            ),
            (Setting::PushInlineBytes, self.push_inline_bytes.clone()),
            (Setting::ServerName, self.server_name.clone()),
            (Setting::MeshEnabled, self.mesh_enabled.clone()),
            (Setting::MeshListen, self.mesh_listen.clone()),
            (Setting::SharedKey, self.shared_key.clone()),
            (
                Setting::MeshAllowPlainHttp,
                self.mesh_allow_plain_http.clone(),
            ),
            (Setting::MeshAllowRemote, self.mesh_allow_remote.clone()),
            (Setting::Sandbox, self.sandbox.clone()),
            (
                Setting::MeshMaxRequestBytes,
                self.mesh_max_request_bytes.clone(),
            ),
            (
                Setting::MeshMaxBufferedBytes,
                self.mesh_max_buffered_bytes.clone(),
            ),
            (
                Setting::MeshMaxConnections,
                self.mesh_max_connections.clone(),
            ),
            (
                Setting::MeshTokenWindowSecs,
                self.mesh_token_window_secs.clone(),
            ),
            (Setting::MeshReplayNonces, self.mesh_replay_nonces.clone()),
            (
                Setting::MeshHeaderTimeoutMs,
                self.mesh_header_timeout_ms.clone(),
            ),
            (
                Setting::MeshBodyTimeoutMs,
                self.mesh_body_timeout_ms.clone(),
            ),
            (
                Setting::MeshIdleTimeoutMs,
                self.mesh_idle_timeout_ms.clone(),
            ),
            (
                Setting::LogFormat,
                self.log_format.clone().map(OsString::from),
            ),
            (Setting::LogLevel, self.log_level.clone()),
            (Setting::ServicesDirectory, self.services_directory.clone()),
            (Setting::ServicesSeed, self.services_seed.clone()),
            (Setting::ServicesPatients, self.services_patients.clone()),
            (
                Setting::ServicesMaxBodyBytes,
                self.services_max_body_bytes.clone(),
            ),
            (
                Setting::ServicesMaxPending,
                self.services_max_pending.clone(),
            ),
            (
                Setting::ServicesMaxProviders,
                self.services_max_providers.clone(),
            ),
            (
                Setting::ServicesMaxRemembered,
                self.services_max_remembered.clone(),
            ),
            (
                Setting::ServicesProviderQueue,
                self.services_provider_queue.clone(),
            ),
            (
                Setting::ServicesCooldownMs,
                self.services_cooldown_ms.clone(),
            ),
            (Setting::ServicesTickMs, self.services_tick_ms.clone()),
            (
                Setting::ServicesMaxSummaries,
                self.services_max_summaries.clone(),
            ),
            (
                Setting::ServicesMaxPrescriptions,
                self.services_max_prescriptions.clone(),
            ),
        ];
        all.into_iter()
            .filter_map(|(s, v)| v.map(|v| (s, v)))
            .collect()
    }
}

/// `spine wal inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The data directory to inspect.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Largest record accepted as valid; use at least the node's setting (1..=1073741824).
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = WalConfig::default().max_record_bytes,
        value_parser = clap::value_parser!(u32).range(1..=(1 << 30)),
    )]
    pub max_record_bytes: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_setting_has_a_flag_naming_its_env_var() {
        let cmd = Cli::command();
        let serve = cmd.find_subcommand("serve").unwrap();
        for setting in Setting::ALL {
            let long = setting.flag().trim_start_matches("--");
            let arg = serve
                .get_arguments()
                .find(|a| a.get_long() == Some(long))
                .unwrap_or_else(|| panic!("no flag {} for {setting:?}", setting.flag()));
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(
                help.contains(&format!("[env: {}]", setting.env())),
                "{}: {help}",
                setting.flag()
            );
        }
    }

    #[test]
    fn given_maps_each_flag_to_its_setting() {
        let cli = Cli::try_parse_from([
            "spine",
            "serve",
            "--data-dir",
            "d",
            "--segment-bytes",
            "1",
            "--max-record-bytes",
            "2",
            "--max-batch-records",
            "3",
            "--max-batch-bytes",
            "4",
            "--max-in-flight",
            "5",
            "--inbox-expiry-secs",
            "6",
            "--purge-after-secs",
            "7",
            "--max-messages",
            "39",
            "--max-inbox-depth",
            "40",
            "--mailboxes",
            "m",
            "--workflows",
            "w",
            "--directory",
            "t",
            "--hash-iterations",
            "8",
            "--partitions",
            "9",
            "--partition-queue",
            "10",
            "--max-restarts",
            "11",
            "--restart-window-secs",
            "12",
            "--expiry-interval-ms",
            "13",
            "--expiry-batch",
            "14",
            "--subscriber-buffer",
            "15",
            "--max-inbox-page",
            "16",
            "--request-wait-ms",
            "17",
            "--shutdown-drain-ms",
            "18",
            "--compaction-check-ms",
            "20",
            "--compaction-min-log-bytes",
            "21",
            "--compaction-max-amplification",
            "22",
            "--huge-pages",
            "--metrics-enabled",
            "false",
            "--metrics-listen",
            "127.0.0.1:19",
            "--metrics-allow-remote",
            "--native-enabled",
            "false",
            "--native-listen",
            "127.0.0.1:23",
            "--quic-enabled=false",
            "--quic-listen",
            "127.0.0.1:24",
            "--network-allow-remote",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--client-ca",
            "ca.pem",
            "--require-client-cert",
            "--max-connections",
            "25",
            "--max-in-flight-per-connection",
            "26",
            "--max-payload-bytes",
            "27",
            "--download-piece-bytes",
            "28",
            "--handshake-timeout-ms",
            "29",
            "--max-connection-buffered-bytes",
            "2048",
            "--push-inline-bytes",
            "4096",
            "--server-name",
            "node-a",
            "--mesh-enabled",
            "--mesh-listen",
            "127.0.0.1:30",
            "--shared-key",
            "k",
            "--mesh-allow-plain-http",
            "true",
            "--mesh-allow-remote=true",
            "--sandbox",
            "--mesh-max-request-bytes",
            "31",
            "--mesh-max-buffered-bytes",
            "32",
            "--mesh-max-connections",
            "33",
            "--mesh-token-window-secs",
            "34",
            "--mesh-replay-nonces",
            "35",
            "--mesh-header-timeout-ms",
            "36",
            "--mesh-body-timeout-ms",
            "37",
            "--mesh-idle-timeout-ms",
            "38",
            "--log-format",
            "json",
            "--log-level",
            "debug",
            "--services-directory",
            "s.toml",
            "--services-seed",
            "41",
            "--services-patients",
            "42",
            "--services-max-body-bytes",
            "43",
            "--services-max-pending",
            "44",
            "--services-max-providers",
            "45",
            "--services-max-remembered",
            "46",
            "--services-provider-queue",
            "47",
            "--services-cooldown-ms",
            "48",
            "--services-tick-ms",
            "49",
            "--services-max-summaries",
            "50",
            "--services-max-prescriptions",
            "51",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let given = args.settings.given();
        assert_eq!(given.len(), Setting::ALL.len());
        for (setting, raw) in given {
            let expected = match setting {
                Setting::DataDir => "d",
                Setting::SegmentBytes => "1",
                Setting::MaxRecordBytes => "2",
                Setting::MaxBatchRecords => "3",
                Setting::MaxBatchBytes => "4",
                Setting::MaxInFlight => "5",
                Setting::InboxExpiry => "6",
                Setting::PurgeAfter => "7",
                Setting::MaxMessages => "39",
                Setting::MaxInboxDepth => "40",
                Setting::Mailboxes => "m",
                Setting::Workflows => "w",
                Setting::DirectoryToml => "t",
                Setting::HashIterations => "8",
                Setting::Partitions => "9",
                Setting::PartitionQueue => "10",
                Setting::MaxRestarts => "11",
                Setting::RestartWindowSecs => "12",
                Setting::ExpiryIntervalMs => "13",
                Setting::ExpiryBatch => "14",
                Setting::SubscriberBuffer => "15",
                Setting::MaxInboxPage => "16",
                Setting::RequestWaitMs => "17",
                Setting::ShutdownDrainMs => "18",
                Setting::CompactionCheckMs => "20",
                Setting::CompactionMinLogBytes => "21",
                Setting::CompactionMaxAmplification => "22",
                Setting::HugePages => "true",
                Setting::MetricsEnabled => "false",
                Setting::MetricsListen => "127.0.0.1:19",
                Setting::MetricsAllowRemote => "true",
                Setting::NativeEnabled => "false",
                Setting::NativeListen => "127.0.0.1:23",
                Setting::QuicEnabled => "false",
                Setting::QuicListen => "127.0.0.1:24",
                Setting::NetworkAllowRemote => "true",
                Setting::TlsCert => "c.pem",
                Setting::TlsKey => "k.pem",
                Setting::ClientCa => "ca.pem",
                Setting::RequireClientCert => "true",
                Setting::MaxConnections => "25",
                Setting::MaxInFlightPerConnection => "26",
                Setting::MaxPayloadBytes => "27",
                Setting::DownloadPieceBytes => "28",
                Setting::HandshakeTimeoutMs => "29",
                Setting::MaxConnectionBufferedBytes => "2048",
                Setting::PushInlineBytes => "4096",
                Setting::ServerName => "node-a",
                Setting::MeshEnabled => "true",
                Setting::MeshListen => "127.0.0.1:30",
                Setting::SharedKey => "k",
                Setting::MeshAllowPlainHttp => "true",
                Setting::MeshAllowRemote => "true",
                Setting::Sandbox => "true",
                Setting::MeshMaxRequestBytes => "31",
                Setting::MeshMaxBufferedBytes => "32",
                Setting::MeshMaxConnections => "33",
                Setting::MeshTokenWindowSecs => "34",
                Setting::MeshReplayNonces => "35",
                Setting::MeshHeaderTimeoutMs => "36",
                Setting::MeshBodyTimeoutMs => "37",
                Setting::MeshIdleTimeoutMs => "38",
                Setting::LogFormat => "json",
                Setting::LogLevel => "debug",
                Setting::ServicesDirectory => "s.toml",
                Setting::ServicesSeed => "41",
                Setting::ServicesPatients => "42",
                Setting::ServicesMaxBodyBytes => "43",
                Setting::ServicesMaxPending => "44",
                Setting::ServicesMaxProviders => "45",
                Setting::ServicesMaxRemembered => "46",
                Setting::ServicesProviderQueue => "47",
                Setting::ServicesCooldownMs => "48",
                Setting::ServicesTickMs => "49",
                Setting::ServicesMaxSummaries => "50",
                Setting::ServicesMaxPrescriptions => "51",
            };
            assert_eq!(raw, expected, "{setting:?}");
        }
    }

    #[test]
    fn inspect_validates_max_record_bytes() {
        assert!(Cli::try_parse_from(["spine", "wal", "inspect", "d"]).is_ok());
        assert!(
            Cli::try_parse_from(["spine", "wal", "inspect", "d", "--max-record-bytes", "0"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["spine", "wal", "inspect"]).is_err());
    }

    #[test]
    fn boolean_flags_take_a_value_or_stand_alone() {
        let given = |args: &[&str]| {
            let mut all = vec!["spine", "serve"];
            all.extend_from_slice(args);
            let Command::Serve(serve) = Cli::try_parse_from(all).unwrap().command else {
                panic!("not serve")
            };
            serve.settings.given()
        };
        assert_eq!(
            given(&["--metrics-allow-remote"]),
            vec![(Setting::MetricsAllowRemote, OsString::from("true"))]
        );
        assert_eq!(
            given(&["--metrics-enabled", "false", "--partitions", "2"]),
            vec![
                (Setting::Partitions, OsString::from("2")),
                (Setting::MetricsEnabled, OsString::from("false")),
            ]
        );
        assert_eq!(
            given(&["--metrics-enabled=false"]),
            vec![(Setting::MetricsEnabled, OsString::from("false"))]
        );
        assert_eq!(
            given(&[
                "--network-allow-remote",
                "--require-client-cert",
                "--quic-enabled",
                "false",
                "--native-enabled",
            ]),
            vec![
                (Setting::NativeEnabled, OsString::from("true")),
                (Setting::QuicEnabled, OsString::from("false")),
                (Setting::NetworkAllowRemote, OsString::from("true")),
                (Setting::RequireClientCert, OsString::from("true")),
            ]
        );
        assert_eq!(
            given(&["--sandbox", "--mesh-enabled", "false"]),
            vec![
                (Setting::MeshEnabled, OsString::from("false")),
                (Setting::Sandbox, OsString::from("true")),
            ]
        );
        // The MESH permissions are never implied: they take a value.
        assert_eq!(
            given(&[
                "--mesh-allow-remote",
                "true",
                "--mesh-allow-plain-http=false"
            ]),
            vec![
                (Setting::MeshAllowPlainHttp, OsString::from("false")),
                (Setting::MeshAllowRemote, OsString::from("true")),
            ]
        );
        for alone in ["--mesh-allow-remote", "--mesh-allow-plain-http"] {
            assert!(
                Cli::try_parse_from(["spine", "serve", alone]).is_err(),
                "{alone} alone"
            );
        }
        // The network's connection limit and the MESH API's are distinct.
        assert_eq!(
            given(&["--max-connections", "7", "--mesh-max-connections", "8"]),
            vec![
                (Setting::MaxConnections, OsString::from("7")),
                (Setting::MeshMaxConnections, OsString::from("8")),
            ]
        );
        // The inbox depth (storage) and the inbox page (runtime) are distinct.
        assert_eq!(
            given(&["--max-inbox-page", "7", "--max-inbox-depth", "8"]),
            vec![
                (Setting::MaxInboxDepth, OsString::from("8")),
                (Setting::MaxInboxPage, OsString::from("7")),
            ]
        );
        // Storage's in-flight limit and the per-connection one are distinct.
        assert_eq!(
            given(&[
                "--max-in-flight",
                "7",
                "--max-in-flight-per-connection",
                "8"
            ]),
            vec![
                (Setting::MaxInFlight, OsString::from("7")),
                (Setting::MaxInFlightPerConnection, OsString::from("8")),
            ]
        );
    }

    /// Checks that the range `setting`'s help promises (`LO..=HI`) is the
    /// one `accepts` enforces: both ends accepted, one past each refused.
    fn assert_help_range(setting: Setting, accepts: impl Fn(&crate::config::NodeConfig) -> bool) {
        let cmd = Cli::command();
        let serve = cmd.find_subcommand("serve").unwrap();
        let long = setting.flag().trim_start_matches("--");
        let help = serve
            .get_arguments()
            .find(|a| a.get_long() == Some(long))
            .and_then(|a| a.get_help())
            .map(|h| h.to_string())
            .unwrap();
        let range = help
            .split_whitespace()
            .find(|w| w.contains("..="))
            .unwrap_or_else(|| panic!("{}: no range in {help:?}", setting.flag()));
        let (lo, hi) = range.trim_end_matches(',').split_once("..=").unwrap();
        let (lo, hi): (u64, u64) = (lo.parse().unwrap(), hi.parse().unwrap());
        let check = |value: u64| {
            let mut config = crate::config::NodeConfig::default();
            setting
                .apply(&mut config, std::ffi::OsStr::new(&value.to_string()))
                .unwrap();
            accepts(&config)
        };
        assert!(check(lo), "{}: {lo} refused", setting.flag());
        assert!(check(hi), "{}: {hi} refused", setting.flag());
        if let Some(below) = lo.checked_sub(1) {
            assert!(!check(below), "{}: {below} accepted", setting.flag());
        }
        assert!(!check(hi + 1), "{}: {} accepted", setting.flag(), hi + 1);
    }

    /// The ranges the help promises for `[network]` are the transport's
    /// own: each end is accepted by `NetworkConfig::validate` and one past
    /// it is refused.
    #[test]
    fn network_ranges_in_the_help_match_the_transport() {
        use crate::config::validate::copy_network_field;
        use spine_actors::transport::NetworkConfig;

        for setting in [
            Setting::MaxConnections,
            Setting::MaxInFlightPerConnection,
            Setting::MaxPayloadBytes,
            Setting::HandshakeTimeoutMs,
            Setting::MaxConnectionBufferedBytes,
            Setting::PushInlineBytes,
        ] {
            assert_help_range(setting, |config| {
                // The smallest piece, so that the payload limit's lower
                // end is judged alone (a piece may not exceed it).
                let mut alone = NetworkConfig {
                    download_piece_bytes: 1024,
                    ..NetworkConfig::default()
                };
                copy_network_field(setting, &config.network, &mut alone).unwrap();
                alone.validate().is_ok()
            });
        }
    }

    /// The ranges the help promises for `[mesh]` are the MESH API's own:
    /// each end is accepted by `MeshConfig::validate` (against the default
    /// record limit) and one past it is refused; the two limits that depend
    /// on other settings are checked at their stated ends.
    #[test]
    fn mesh_ranges_in_the_help_match_the_mesh_api() {
        use crate::config::validate::copy_mesh_field;
        use crate::config::NodeConfig;
        use spine_actors::mesh::MeshConfig;

        let record = u64::from(NodeConfig::default().storage.max_record_bytes);
        let accepts = |setting: Setting, config: &NodeConfig| {
            let mut alone = MeshConfig::default();
            copy_mesh_field(setting, &config.mesh, &mut alone).unwrap();
            alone.validate(false, record).is_ok()
        };
        for setting in [
            Setting::MeshMaxConnections,
            Setting::MeshTokenWindowSecs,
            Setting::MeshReplayNonces,
            Setting::MeshHeaderTimeoutMs,
            Setting::MeshBodyTimeoutMs,
            Setting::MeshIdleTimeoutMs,
        ] {
            assert_help_range(setting, |config| accepts(setting, config));
        }

        let cmd = Cli::command();
        let serve = cmd.find_subcommand("serve").unwrap();
        let help = |setting: Setting| {
            let long = setting.flag().trim_start_matches("--");
            serve
                .get_arguments()
                .find(|a| a.get_long() == Some(long))
                .and_then(|a| a.get_help())
                .map(|h| h.to_string())
                .unwrap()
        };
        let judge = |mesh: MeshConfig| mesh.validate(false, record).is_ok();
        // 1024 up to --max-record-bytes minus 65536.
        assert!(
            help(Setting::MeshMaxRequestBytes)
                .contains("1024 up to --max-record-bytes minus 65536"),
            "{}",
            help(Setting::MeshMaxRequestBytes)
        );
        let request = |n: u64| MeshConfig {
            max_request_bytes: n,
            max_buffered_bytes: n.max(1 << 30),
            ..MeshConfig::default()
        };
        assert!(judge(request(1024)));
        assert!(!judge(request(1023)));
        assert!(judge(request(record - 65536)));
        assert!(!judge(request(record - 65535)));
        // --mesh-max-request-bytes up to 1099511627776.
        assert!(
            help(Setting::MeshMaxBufferedBytes)
                .contains("--mesh-max-request-bytes up to 1099511627776"),
            "{}",
            help(Setting::MeshMaxBufferedBytes)
        );
        let buffered = |n: u64| MeshConfig {
            max_buffered_bytes: n,
            ..MeshConfig::default()
        };
        let floor = MeshConfig::default().max_request_bytes;
        assert!(judge(buffered(floor)));
        assert!(!judge(buffered(floor - 1)));
        assert!(judge(buffered(1 << 40)));
        assert!(!judge(buffered((1 << 40) + 1)));
        // The shared key's length.
        assert!(help(Setting::SharedKey).contains("1 to 1024 bytes"));
        let key = |n: usize| MeshConfig {
            shared_key: "k".repeat(n),
            ..MeshConfig::default()
        };
        assert!(judge(key(1)) && judge(key(1024)));
        assert!(!judge(key(0)) && !judge(key(1025)));
    }

    /// The ranges the help promises for `[storage]`'s message limits are
    /// the ones validation enforces (`config::validate`, with every
    /// problem found, and the node's own `StorageConfig::validate`): each
    /// end is accepted and one past it is refused; the inbox depth, bounded
    /// by `--max-messages`, is checked at its stated ends.
    #[test]
    fn storage_limit_ranges_in_the_help_match_validation() {
        use crate::config::NodeConfig;

        let accepted = |config: &NodeConfig| {
            let mut loaded = crate::config::resolve(None, &[], &|_| None).unwrap();
            loaded.config = config.clone();
            let by_config = loaded.validate().is_ok();
            let by_node = config.storage.validate().is_ok();
            assert_eq!(by_config, by_node, "{:?}", config.storage);
            by_config
        };
        // Judged alone: the smallest inbox depth, which any store limit
        // may hold.
        assert_help_range(Setting::MaxMessages, |config| {
            let mut alone = config.clone();
            alone.storage.max_inbox_depth = 1;
            accepted(&alone)
        });

        let cmd = Cli::command();
        let serve = cmd.find_subcommand("serve").unwrap();
        let help = serve
            .get_arguments()
            .find(|a| a.get_long() == Some("max-inbox-depth"))
            .and_then(|a| a.get_help())
            .map(|h| h.to_string())
            .unwrap();
        assert!(help.contains("1 up to --max-messages"), "{help}");
        let depth = |messages: u64, depth: u64| {
            let mut config = NodeConfig::default();
            config.storage.max_messages = messages;
            config.storage.max_inbox_depth = depth;
            accepted(&config)
        };
        let most = spine_actors::node::MAX_STORED_MESSAGES;
        for messages in [1, 1000, NodeConfig::default().storage.max_messages, most] {
            assert!(depth(messages, 1), "{messages}");
            assert!(depth(messages, messages), "{messages}");
            assert!(!depth(messages, 0), "{messages}");
            assert!(!depth(messages, messages + 1), "{messages}");
        }
    }

    /// The ranges the help promises are the runtime's own: each end is
    /// accepted by `RuntimeConfig::validate` and one past it is refused.
    #[test]
    fn runtime_ranges_in_the_help_match_the_runtime() {
        use crate::config::validate::copy_runtime_field;
        use spine_actors::node::RuntimeConfig;

        // Numeric settings only (a boolean has no range).
        for setting in Setting::in_section("runtime")
            .into_iter()
            .filter(|s| *s != Setting::HugePages)
        {
            assert_help_range(setting, |config| {
                let mut alone = RuntimeConfig::default();
                copy_runtime_field(setting, &config.runtime, &mut alone).unwrap();
                alone.validate().is_ok()
            });
        }
    }

    #[test]
    fn log_format_is_restricted() {
        assert!(Cli::try_parse_from(["spine", "serve", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn help_documents_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "0  success",
            "1  usage",
            "2  storage refused",
            "3  runtime",
            "4  ",
        ] {
            assert!(help.contains(needle), "{needle}: {help}");
        }
    }
}
