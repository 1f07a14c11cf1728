//! The table of settings: each one's file key, environment variable and
//! flag, and how a raw (environment or flag) value is parsed into the model.
//!
//! Invariant: this table is the single list of settings. Parsing here only
//! checks the *type* (a number, a path, a format name); ranges and
//! cross-setting rules are checked once, on the merged result, in
//! `validate`, so a value is judged the same wherever it came from.

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use spine_protocol::mesh::auth::DEFAULT_SHARED_KEY;

use super::{LogFormat, NodeConfig};

/// One configurable value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Setting {
    /// `storage.data_dir`.
    DataDir,
    /// `storage.segment_bytes`.
    SegmentBytes,
    /// `storage.max_record_bytes`.
    MaxRecordBytes,
    /// `storage.max_batch_records`.
    MaxBatchRecords,
    /// `storage.max_batch_bytes`.
    MaxBatchBytes,
    /// `storage.max_in_flight`.
    MaxInFlight,
    /// `storage.inbox_expiry` (seconds).
    InboxExpiry,
    /// `storage.purge_after` (seconds).
    PurgeAfter,
    /// `storage.max_messages` (per partition).
    MaxMessages,
    /// `storage.max_inbox_depth`.
    MaxInboxDepth,
    /// `directory.mailboxes`.
    Mailboxes,
    /// `directory.workflows`.
    Workflows,
    /// `directory.toml`.
    DirectoryToml,
    /// `directory.hash_iterations`.
    HashIterations,
    /// `runtime.partitions`.
    Partitions,
    /// `runtime.partition_queue`.
    PartitionQueue,
    /// `runtime.max_restarts`.
    MaxRestarts,
    /// `runtime.restart_window_secs`.
    RestartWindowSecs,
    /// `runtime.expiry_interval_ms`.
    ExpiryIntervalMs,
    /// `runtime.expiry_batch`.
    ExpiryBatch,
    /// `runtime.subscriber_buffer`.
    SubscriberBuffer,
    /// `runtime.max_inbox_page`.
    MaxInboxPage,
    /// `runtime.request_wait_ms`.
    RequestWaitMs,
    /// `runtime.shutdown_drain_ms`.
    ShutdownDrainMs,
    /// `runtime.compaction_check_ms`.
    CompactionCheckMs,
    /// `runtime.compaction_min_log_bytes`.
    CompactionMinLogBytes,
    /// `runtime.compaction_max_amplification`.
    CompactionMaxAmplification,
    /// `runtime.huge_pages`.
    HugePages,
    /// `metrics.enabled`.
    MetricsEnabled,
    /// `metrics.listen`.
    MetricsListen,
    /// `metrics.allow_remote`.
    MetricsAllowRemote,
    /// `network.native_enabled`.
    NativeEnabled,
    /// `network.native_listen`.
    NativeListen,
    /// `network.quic_enabled`.
    QuicEnabled,
    /// `network.quic_listen`.
    QuicListen,
    /// `network.allow_remote`.
    NetworkAllowRemote,
    /// `network.tls_cert`.
    TlsCert,
    /// `network.tls_key`.
    TlsKey,
    /// `network.client_ca`.
    ClientCa,
    /// `network.require_client_cert`.
    RequireClientCert,
    /// `network.max_connections`.
    MaxConnections,
    /// `network.max_in_flight` (per connection; not `storage.max_in_flight`).
    MaxInFlightPerConnection,
    /// `network.max_payload_bytes`.
    MaxPayloadBytes,
    /// `network.download_piece_bytes`.
    DownloadPieceBytes,
    /// `network.handshake_timeout_ms`.
    HandshakeTimeoutMs,
    /// `network.max_connection_buffered_bytes`.
    MaxConnectionBufferedBytes,
    /// `network.push_inline_bytes`.
    PushInlineBytes,
    /// `network.server_name`.
    ServerName,
    /// `mesh.enabled`.
    MeshEnabled,
    /// `mesh.listen`.
    MeshListen,
    /// `mesh.shared_key` (a secret: never printed or echoed, see
    /// [`Setting::is_secret`]).
    SharedKey,
    /// `mesh.allow_plain_http`.
    MeshAllowPlainHttp,
    /// `mesh.allow_remote`.
    MeshAllowRemote,
    /// `mesh.sandbox`.
    Sandbox,
    /// `mesh.max_request_bytes`.
    MeshMaxRequestBytes,
    /// `mesh.max_buffered_bytes`.
    MeshMaxBufferedBytes,
    /// `mesh.max_connections` (not `network.max_connections`).
    MeshMaxConnections,
    /// `mesh.token_window_secs`.
    MeshTokenWindowSecs,
    /// `mesh.replay_nonces`.
    MeshReplayNonces,
    /// `mesh.header_timeout_ms`.
    MeshHeaderTimeoutMs,
    /// `mesh.body_timeout_ms`.
    MeshBodyTimeoutMs,
    /// `mesh.idle_timeout_ms`.
    MeshIdleTimeoutMs,
    /// `log.format`.
    LogFormat,
    /// `log.level`.
    LogLevel,
    /// `services.directory`.
    ServicesDirectory,
    /// `services.seed`.
    ServicesSeed,
    /// `services.patients`.
    ServicesPatients,
    /// `services.max_body_bytes`.
    ServicesMaxBodyBytes,
    /// `services.max_pending`.
    ServicesMaxPending,
    /// `services.max_providers`.
    ServicesMaxProviders,
    /// `services.max_remembered`.
    ServicesMaxRemembered,
    /// `services.provider_queue`.
    ServicesProviderQueue,
    /// `services.cooldown_ms`.
    ServicesCooldownMs,
    /// `services.tick_ms`.
    ServicesTickMs,
    /// `services.max_summaries`.
    ServicesMaxSummaries,
    /// `services.max_prescriptions`.
    ServicesMaxPrescriptions,
}

impl Setting {
    /// Every setting, in file order.
    pub const ALL: [Setting; 76] = [
        Setting::DataDir,
        Setting::SegmentBytes,
        Setting::MaxRecordBytes,
        Setting::MaxBatchRecords,
        Setting::MaxBatchBytes,
        Setting::MaxInFlight,
        Setting::InboxExpiry,
        Setting::PurgeAfter,
        Setting::MaxMessages,
        Setting::MaxInboxDepth,
        Setting::Mailboxes,
        Setting::Workflows,
        Setting::DirectoryToml,
        Setting::HashIterations,
        Setting::Partitions,
        Setting::PartitionQueue,
        Setting::MaxRestarts,
        Setting::RestartWindowSecs,
        Setting::ExpiryIntervalMs,
        Setting::ExpiryBatch,
        Setting::SubscriberBuffer,
        Setting::MaxInboxPage,
        Setting::RequestWaitMs,
        Setting::ShutdownDrainMs,
        Setting::CompactionCheckMs,
        Setting::CompactionMinLogBytes,
        Setting::CompactionMaxAmplification,
        Setting::HugePages,
        Setting::MetricsEnabled,
        Setting::MetricsListen,
        Setting::MetricsAllowRemote,
        Setting::NativeEnabled,
        Setting::NativeListen,
        Setting::QuicEnabled,
        Setting::QuicListen,
        Setting::NetworkAllowRemote,
        Setting::TlsCert,
        Setting::TlsKey,
        Setting::ClientCa,
        Setting::RequireClientCert,
        Setting::MaxConnections,
        Setting::MaxInFlightPerConnection,
        Setting::MaxPayloadBytes,
        Setting::DownloadPieceBytes,
        Setting::HandshakeTimeoutMs,
        Setting::MaxConnectionBufferedBytes,
        Setting::PushInlineBytes,
        Setting::ServerName,
        Setting::MeshEnabled,
        Setting::MeshListen,
        Setting::SharedKey,
        Setting::MeshAllowPlainHttp,
        Setting::MeshAllowRemote,
        Setting::Sandbox,
        Setting::MeshMaxRequestBytes,
        Setting::MeshMaxBufferedBytes,
        Setting::MeshMaxConnections,
        Setting::MeshTokenWindowSecs,
        Setting::MeshReplayNonces,
        Setting::MeshHeaderTimeoutMs,
        Setting::MeshBodyTimeoutMs,
        Setting::MeshIdleTimeoutMs,
        Setting::LogFormat,
        Setting::LogLevel,
        Setting::ServicesDirectory,
        Setting::ServicesSeed,
        Setting::ServicesPatients,
        Setting::ServicesMaxBodyBytes,
        Setting::ServicesMaxPending,
        Setting::ServicesMaxProviders,
        Setting::ServicesMaxRemembered,
        Setting::ServicesProviderQueue,
        Setting::ServicesCooldownMs,
        Setting::ServicesTickMs,
        Setting::ServicesMaxSummaries,
        Setting::ServicesMaxPrescriptions,
    ];

    /// The sections of the file, in order.
    pub const SECTIONS: [&'static str; 8] = [
        "storage",
        "directory",
        "runtime",
        "metrics",
        "network",
        "mesh",
        "log",
        "services",
    ];

    /// The dotted file key, `section.field`.
    pub fn key(self) -> &'static str {
        match self {
            Setting::DataDir => "storage.data_dir",
            Setting::SegmentBytes => "storage.segment_bytes",
            Setting::MaxRecordBytes => "storage.max_record_bytes",
            Setting::MaxBatchRecords => "storage.max_batch_records",
            Setting::MaxBatchBytes => "storage.max_batch_bytes",
            Setting::MaxInFlight => "storage.max_in_flight",
            Setting::InboxExpiry => "storage.inbox_expiry",
            Setting::PurgeAfter => "storage.purge_after",
            Setting::MaxMessages => "storage.max_messages",
            Setting::MaxInboxDepth => "storage.max_inbox_depth",
            Setting::Mailboxes => "directory.mailboxes",
            Setting::Workflows => "directory.workflows",
            Setting::DirectoryToml => "directory.toml",
            Setting::HashIterations => "directory.hash_iterations",
            Setting::Partitions => "runtime.partitions",
            Setting::PartitionQueue => "runtime.partition_queue",
            Setting::MaxRestarts => "runtime.max_restarts",
            Setting::RestartWindowSecs => "runtime.restart_window_secs",
            Setting::ExpiryIntervalMs => "runtime.expiry_interval_ms",
            Setting::ExpiryBatch => "runtime.expiry_batch",
            Setting::SubscriberBuffer => "runtime.subscriber_buffer",
            Setting::MaxInboxPage => "runtime.max_inbox_page",
            Setting::RequestWaitMs => "runtime.request_wait_ms",
            Setting::ShutdownDrainMs => "runtime.shutdown_drain_ms",
            Setting::CompactionCheckMs => "runtime.compaction_check_ms",
            Setting::CompactionMinLogBytes => "runtime.compaction_min_log_bytes",
            Setting::CompactionMaxAmplification => "runtime.compaction_max_amplification",
            Setting::HugePages => "runtime.huge_pages",
            Setting::MetricsEnabled => "metrics.enabled",
            Setting::MetricsListen => "metrics.listen",
            Setting::MetricsAllowRemote => "metrics.allow_remote",
            Setting::NativeEnabled => "network.native_enabled",
            Setting::NativeListen => "network.native_listen",
            Setting::QuicEnabled => "network.quic_enabled",
            Setting::QuicListen => "network.quic_listen",
            Setting::NetworkAllowRemote => "network.allow_remote",
            Setting::TlsCert => "network.tls_cert",
            Setting::TlsKey => "network.tls_key",
            Setting::ClientCa => "network.client_ca",
            Setting::RequireClientCert => "network.require_client_cert",
            Setting::MaxConnections => "network.max_connections",
            Setting::MaxInFlightPerConnection => "network.max_in_flight",
            Setting::MaxPayloadBytes => "network.max_payload_bytes",
            Setting::DownloadPieceBytes => "network.download_piece_bytes",
            Setting::HandshakeTimeoutMs => "network.handshake_timeout_ms",
            Setting::MaxConnectionBufferedBytes => "network.max_connection_buffered_bytes",
            Setting::PushInlineBytes => "network.push_inline_bytes",
            Setting::ServerName => "network.server_name",
            Setting::MeshEnabled => "mesh.enabled",
            Setting::MeshListen => "mesh.listen",
            Setting::SharedKey => "mesh.shared_key",
            Setting::MeshAllowPlainHttp => "mesh.allow_plain_http",
            Setting::MeshAllowRemote => "mesh.allow_remote",
            Setting::Sandbox => "mesh.sandbox",
            Setting::MeshMaxRequestBytes => "mesh.max_request_bytes",
            Setting::MeshMaxBufferedBytes => "mesh.max_buffered_bytes",
            Setting::MeshMaxConnections => "mesh.max_connections",
            Setting::MeshTokenWindowSecs => "mesh.token_window_secs",
            Setting::MeshReplayNonces => "mesh.replay_nonces",
            Setting::MeshHeaderTimeoutMs => "mesh.header_timeout_ms",
            Setting::MeshBodyTimeoutMs => "mesh.body_timeout_ms",
            Setting::MeshIdleTimeoutMs => "mesh.idle_timeout_ms",
            Setting::LogFormat => "log.format",
            Setting::LogLevel => "log.level",
            Setting::ServicesDirectory => "services.directory",
            Setting::ServicesSeed => "services.seed",
            Setting::ServicesPatients => "services.patients",
            Setting::ServicesMaxBodyBytes => "services.max_body_bytes",
            Setting::ServicesMaxPending => "services.max_pending",
            Setting::ServicesMaxProviders => "services.max_providers",
            Setting::ServicesMaxRemembered => "services.max_remembered",
            Setting::ServicesProviderQueue => "services.provider_queue",
            Setting::ServicesCooldownMs => "services.cooldown_ms",
            Setting::ServicesTickMs => "services.tick_ms",
            Setting::ServicesMaxSummaries => "services.max_summaries",
            Setting::ServicesMaxPrescriptions => "services.max_prescriptions",
        }
    }

    /// The file section and field name.
    pub fn section_and_field(self) -> (&'static str, &'static str) {
        self.key().split_once('.').unwrap_or(("", self.key()))
    }

    /// The settings of one section, in file order (derived from [`ALL`],
    /// the single list).
    ///
    /// [`ALL`]: Setting::ALL
    pub fn in_section(section: &str) -> Vec<Setting> {
        Setting::ALL
            .into_iter()
            .filter(|s| s.section_and_field().0 == section)
            .collect()
    }

    /// The environment variable.
    pub fn env(self) -> &'static str {
        match self {
            Setting::DataDir => "SPINE_DATA_DIR",
            Setting::SegmentBytes => "SPINE_SEGMENT_BYTES",
            Setting::MaxRecordBytes => "SPINE_MAX_RECORD_BYTES",
            Setting::MaxBatchRecords => "SPINE_MAX_BATCH_RECORDS",
            Setting::MaxBatchBytes => "SPINE_MAX_BATCH_BYTES",
            Setting::MaxInFlight => "SPINE_MAX_IN_FLIGHT",
            Setting::InboxExpiry => "SPINE_INBOX_EXPIRY_SECS",
            Setting::PurgeAfter => "SPINE_PURGE_AFTER_SECS",
            Setting::MaxMessages => "SPINE_MAX_MESSAGES",
            Setting::MaxInboxDepth => "SPINE_MAX_INBOX_DEPTH",
            Setting::Mailboxes => "SPINE_MAILBOXES",
            Setting::Workflows => "SPINE_WORKFLOWS",
            Setting::DirectoryToml => "SPINE_DIRECTORY_TOML",
            Setting::HashIterations => "SPINE_HASH_ITERATIONS",
            Setting::Partitions => "SPINE_PARTITIONS",
            Setting::PartitionQueue => "SPINE_PARTITION_QUEUE",
            Setting::MaxRestarts => "SPINE_MAX_RESTARTS",
            Setting::RestartWindowSecs => "SPINE_RESTART_WINDOW_SECS",
            Setting::ExpiryIntervalMs => "SPINE_EXPIRY_INTERVAL_MS",
            Setting::ExpiryBatch => "SPINE_EXPIRY_BATCH",
            Setting::SubscriberBuffer => "SPINE_SUBSCRIBER_BUFFER",
            Setting::MaxInboxPage => "SPINE_MAX_INBOX_PAGE",
            Setting::RequestWaitMs => "SPINE_REQUEST_WAIT_MS",
            Setting::ShutdownDrainMs => "SPINE_SHUTDOWN_DRAIN_MS",
            Setting::CompactionCheckMs => "SPINE_COMPACTION_CHECK_MS",
            Setting::CompactionMinLogBytes => "SPINE_COMPACTION_MIN_LOG_BYTES",
            Setting::CompactionMaxAmplification => "SPINE_COMPACTION_MAX_AMPLIFICATION",
            Setting::HugePages => "SPINE_HUGE_PAGES",
            Setting::MetricsEnabled => "SPINE_METRICS_ENABLED",
            Setting::MetricsListen => "SPINE_METRICS_LISTEN",
            Setting::MetricsAllowRemote => "SPINE_METRICS_ALLOW_REMOTE",
            Setting::NativeEnabled => "SPINE_NATIVE_ENABLED",
            Setting::NativeListen => "SPINE_NATIVE_LISTEN",
            Setting::QuicEnabled => "SPINE_QUIC_ENABLED",
            Setting::QuicListen => "SPINE_QUIC_LISTEN",
            Setting::NetworkAllowRemote => "SPINE_NETWORK_ALLOW_REMOTE",
            Setting::TlsCert => "SPINE_TLS_CERT",
            Setting::TlsKey => "SPINE_TLS_KEY",
            Setting::ClientCa => "SPINE_CLIENT_CA",
            Setting::RequireClientCert => "SPINE_REQUIRE_CLIENT_CERT",
            Setting::MaxConnections => "SPINE_MAX_CONNECTIONS",
            Setting::MaxInFlightPerConnection => "SPINE_MAX_IN_FLIGHT_PER_CONNECTION",
            Setting::MaxPayloadBytes => "SPINE_MAX_PAYLOAD_BYTES",
            Setting::DownloadPieceBytes => "SPINE_DOWNLOAD_PIECE_BYTES",
            Setting::HandshakeTimeoutMs => "SPINE_HANDSHAKE_TIMEOUT_MS",
            Setting::MaxConnectionBufferedBytes => "SPINE_MAX_CONNECTION_BUFFERED_BYTES",
            Setting::PushInlineBytes => "SPINE_PUSH_INLINE_BYTES",
            Setting::ServerName => "SPINE_SERVER_NAME",
            Setting::MeshEnabled => "SPINE_MESH_ENABLED",
            Setting::MeshListen => "SPINE_MESH_LISTEN",
            Setting::SharedKey => "SPINE_SHARED_KEY",
            Setting::MeshAllowPlainHttp => "SPINE_MESH_ALLOW_PLAIN_HTTP",
            Setting::MeshAllowRemote => "SPINE_MESH_ALLOW_REMOTE",
            Setting::Sandbox => "SPINE_SANDBOX",
            Setting::MeshMaxRequestBytes => "SPINE_MESH_MAX_REQUEST_BYTES",
            Setting::MeshMaxBufferedBytes => "SPINE_MESH_MAX_BUFFERED_BYTES",
            Setting::MeshMaxConnections => "SPINE_MESH_MAX_CONNECTIONS",
            Setting::MeshTokenWindowSecs => "SPINE_MESH_TOKEN_WINDOW_SECS",
            Setting::MeshReplayNonces => "SPINE_MESH_REPLAY_NONCES",
            Setting::MeshHeaderTimeoutMs => "SPINE_MESH_HEADER_TIMEOUT_MS",
            Setting::MeshBodyTimeoutMs => "SPINE_MESH_BODY_TIMEOUT_MS",
            Setting::MeshIdleTimeoutMs => "SPINE_MESH_IDLE_TIMEOUT_MS",
            Setting::LogFormat => "SPINE_LOG_FORMAT",
            Setting::LogLevel => "SPINE_LOG_LEVEL",
            Setting::ServicesDirectory => "SPINE_SERVICES_DIRECTORY",
            Setting::ServicesSeed => "SPINE_SERVICES_SEED",
            Setting::ServicesPatients => "SPINE_SERVICES_PATIENTS",
            Setting::ServicesMaxBodyBytes => "SPINE_SERVICES_MAX_BODY_BYTES",
            Setting::ServicesMaxPending => "SPINE_SERVICES_MAX_PENDING",
            Setting::ServicesMaxProviders => "SPINE_SERVICES_MAX_PROVIDERS",
            Setting::ServicesMaxRemembered => "SPINE_SERVICES_MAX_REMEMBERED",
            Setting::ServicesProviderQueue => "SPINE_SERVICES_PROVIDER_QUEUE",
            Setting::ServicesCooldownMs => "SPINE_SERVICES_COOLDOWN_MS",
            Setting::ServicesTickMs => "SPINE_SERVICES_TICK_MS",
            Setting::ServicesMaxSummaries => "SPINE_SERVICES_MAX_SUMMARIES",
            Setting::ServicesMaxPrescriptions => "SPINE_SERVICES_MAX_PRESCRIPTIONS",
        }
    }

    /// The command-line flag, with its dashes.
    pub fn flag(self) -> &'static str {
        match self {
            Setting::DataDir => "--data-dir",
            Setting::SegmentBytes => "--segment-bytes",
            Setting::MaxRecordBytes => "--max-record-bytes",
            Setting::MaxBatchRecords => "--max-batch-records",
            Setting::MaxBatchBytes => "--max-batch-bytes",
            Setting::MaxInFlight => "--max-in-flight",
            Setting::InboxExpiry => "--inbox-expiry-secs",
            Setting::PurgeAfter => "--purge-after-secs",
            Setting::MaxMessages => "--max-messages",
            Setting::MaxInboxDepth => "--max-inbox-depth",
            Setting::Mailboxes => "--mailboxes",
            Setting::Workflows => "--workflows",
            Setting::DirectoryToml => "--directory",
            Setting::HashIterations => "--hash-iterations",
            Setting::Partitions => "--partitions",
            Setting::PartitionQueue => "--partition-queue",
            Setting::MaxRestarts => "--max-restarts",
            Setting::RestartWindowSecs => "--restart-window-secs",
            Setting::ExpiryIntervalMs => "--expiry-interval-ms",
            Setting::ExpiryBatch => "--expiry-batch",
            Setting::SubscriberBuffer => "--subscriber-buffer",
            Setting::MaxInboxPage => "--max-inbox-page",
            Setting::RequestWaitMs => "--request-wait-ms",
            Setting::ShutdownDrainMs => "--shutdown-drain-ms",
            Setting::CompactionCheckMs => "--compaction-check-ms",
            Setting::CompactionMinLogBytes => "--compaction-min-log-bytes",
            Setting::CompactionMaxAmplification => "--compaction-max-amplification",
            Setting::HugePages => "--huge-pages",
            Setting::MetricsEnabled => "--metrics-enabled",
            Setting::MetricsListen => "--metrics-listen",
            Setting::MetricsAllowRemote => "--metrics-allow-remote",
            Setting::NativeEnabled => "--native-enabled",
            Setting::NativeListen => "--native-listen",
            Setting::QuicEnabled => "--quic-enabled",
            Setting::QuicListen => "--quic-listen",
            Setting::NetworkAllowRemote => "--network-allow-remote",
            Setting::TlsCert => "--tls-cert",
            Setting::TlsKey => "--tls-key",
            Setting::ClientCa => "--client-ca",
            Setting::RequireClientCert => "--require-client-cert",
            Setting::MaxConnections => "--max-connections",
            Setting::MaxInFlightPerConnection => "--max-in-flight-per-connection",
            Setting::MaxPayloadBytes => "--max-payload-bytes",
            Setting::DownloadPieceBytes => "--download-piece-bytes",
            Setting::HandshakeTimeoutMs => "--handshake-timeout-ms",
            Setting::MaxConnectionBufferedBytes => "--max-connection-buffered-bytes",
            Setting::PushInlineBytes => "--push-inline-bytes",
            Setting::ServerName => "--server-name",
            Setting::MeshEnabled => "--mesh-enabled",
            Setting::MeshListen => "--mesh-listen",
            Setting::SharedKey => "--shared-key",
            Setting::MeshAllowPlainHttp => "--mesh-allow-plain-http",
            Setting::MeshAllowRemote => "--mesh-allow-remote",
            Setting::Sandbox => "--sandbox",
            Setting::MeshMaxRequestBytes => "--mesh-max-request-bytes",
            Setting::MeshMaxBufferedBytes => "--mesh-max-buffered-bytes",
            Setting::MeshMaxConnections => "--mesh-max-connections",
            Setting::MeshTokenWindowSecs => "--mesh-token-window-secs",
            Setting::MeshReplayNonces => "--mesh-replay-nonces",
            Setting::MeshHeaderTimeoutMs => "--mesh-header-timeout-ms",
            Setting::MeshBodyTimeoutMs => "--mesh-body-timeout-ms",
            Setting::MeshIdleTimeoutMs => "--mesh-idle-timeout-ms",
            Setting::LogFormat => "--log-format",
            Setting::LogLevel => "--log-level",
            Setting::ServicesDirectory => "--services-directory",
            Setting::ServicesSeed => "--services-seed",
            Setting::ServicesPatients => "--services-patients",
            Setting::ServicesMaxBodyBytes => "--services-max-body-bytes",
            Setting::ServicesMaxPending => "--services-max-pending",
            Setting::ServicesMaxProviders => "--services-max-providers",
            Setting::ServicesMaxRemembered => "--services-max-remembered",
            Setting::ServicesProviderQueue => "--services-provider-queue",
            Setting::ServicesCooldownMs => "--services-cooldown-ms",
            Setting::ServicesTickMs => "--services-tick-ms",
            Setting::ServicesMaxSummaries => "--services-max-summaries",
            Setting::ServicesMaxPrescriptions => "--services-max-prescriptions",
        }
    }

    /// Whether the value is a secret: it is never printed by
    /// `--print-config` nor shown in an error (see [`shown_secret`]).
    pub fn is_secret(self) -> bool {
        self == Setting::SharedKey
    }

    /// Parses `raw` and stores it. On failure returns what was expected
    /// (never the value itself).
    pub fn apply(self, config: &mut NodeConfig, raw: &OsStr) -> Result<(), String> {
        let storage = &mut config.storage;
        let directory = &mut config.directory;
        let runtime = &mut config.runtime;
        let metrics = &mut config.metrics;
        let network = &mut config.network;
        let mesh = &mut config.mesh;
        match self {
            Setting::DataDir => storage.data_dir = PathBuf::from(raw),
            Setting::SegmentBytes => storage.segment_bytes = number(raw, "a number of bytes")?,
            Setting::MaxRecordBytes => storage.max_record_bytes = number(raw, "a number of bytes")?,
            Setting::MaxBatchRecords => {
                storage.max_batch_records = number(raw, "a number of records")?
            }
            Setting::MaxBatchBytes => storage.max_batch_bytes = number(raw, "a number of bytes")?,
            Setting::MaxInFlight => storage.max_in_flight = number(raw, "a number of records")?,
            Setting::InboxExpiry => {
                storage.inbox_expiry = Duration::from_secs(number(raw, "a number of seconds")?)
            }
            Setting::PurgeAfter => {
                storage.purge_after = Duration::from_secs(number(raw, "a number of seconds")?)
            }
            Setting::MaxMessages => storage.max_messages = number(raw, "a number of messages")?,
            Setting::MaxInboxDepth => {
                storage.max_inbox_depth = number(raw, "a number of messages")?
            }
            Setting::Mailboxes => directory.mailboxes = Some(PathBuf::from(raw)),
            Setting::Workflows => directory.workflows = Some(PathBuf::from(raw)),
            Setting::DirectoryToml => directory.toml = Some(PathBuf::from(raw)),
            Setting::HashIterations => {
                directory.hash_iterations = number(raw, "a number of iterations")?
            }
            Setting::Partitions => runtime.partitions = number(raw, "a number of partitions")?,
            Setting::PartitionQueue => {
                runtime.partition_queue = number(raw, "a number of requests")?
            }
            Setting::MaxRestarts => runtime.max_restarts = number(raw, "a number of restarts")?,
            Setting::RestartWindowSecs => {
                runtime.restart_window_secs = number(raw, "a number of seconds")?
            }
            Setting::ExpiryIntervalMs => {
                runtime.expiry_interval_ms = number(raw, "a number of milliseconds")?
            }
            Setting::ExpiryBatch => runtime.expiry_batch = number(raw, "a number of messages")?,
            Setting::SubscriberBuffer => {
                runtime.subscriber_buffer = number(raw, "a number of notifications")?
            }
            Setting::MaxInboxPage => runtime.max_inbox_page = number(raw, "a number of messages")?,
            Setting::RequestWaitMs => {
                runtime.request_wait_ms = number(raw, "a number of milliseconds")?
            }
            Setting::ShutdownDrainMs => {
                runtime.shutdown_drain_ms = number(raw, "a number of milliseconds")?
            }
            Setting::CompactionCheckMs => {
                runtime.compaction_check_ms = number(raw, "a number of milliseconds")?
            }
            Setting::CompactionMinLogBytes => {
                runtime.compaction_min_log_bytes = number(raw, "a number of bytes")?
            }
            Setting::CompactionMaxAmplification => {
                runtime.compaction_max_amplification = number(raw, "a whole number")?
            }
            Setting::HugePages => runtime.huge_pages = boolean(raw)?,
            Setting::MetricsEnabled => metrics.enabled = boolean(raw)?,
            Setting::MetricsListen => metrics.listen = text(raw)?.to_string(),
            Setting::MetricsAllowRemote => metrics.allow_remote = boolean(raw)?,
            Setting::NativeEnabled => network.native_enabled = boolean(raw)?,
            Setting::NativeListen => network.native_listen = text(raw)?.to_string(),
            Setting::QuicEnabled => network.quic_enabled = boolean(raw)?,
            Setting::QuicListen => network.quic_listen = text(raw)?.to_string(),
            Setting::NetworkAllowRemote => network.allow_remote = boolean(raw)?,
            Setting::TlsCert => network.tls_cert = Some(PathBuf::from(raw)),
            Setting::TlsKey => network.tls_key = Some(PathBuf::from(raw)),
            Setting::ClientCa => network.client_ca = Some(PathBuf::from(raw)),
            Setting::RequireClientCert => network.require_client_cert = boolean(raw)?,
            Setting::MaxConnections => {
                network.max_connections = number(raw, "a number of connections")?
            }
            Setting::MaxInFlightPerConnection => {
                network.max_in_flight = number(raw, "a number of requests")?
            }
            Setting::MaxPayloadBytes => {
                network.max_payload_bytes = number(raw, "a number of bytes")?
            }
            Setting::DownloadPieceBytes => {
                network.download_piece_bytes = number(raw, "a number of bytes")?
            }
            Setting::HandshakeTimeoutMs => {
                network.handshake_timeout_ms = number(raw, "a number of milliseconds")?
            }
            Setting::MaxConnectionBufferedBytes => {
                network.max_connection_buffered_bytes = number(raw, "a number of bytes")?
            }
            Setting::PushInlineBytes => {
                network.push_inline_bytes = number(raw, "a number of bytes")?
            }
            Setting::ServerName => network.server_name = text(raw)?.to_string(),
            Setting::MeshEnabled => mesh.enabled = boolean(raw)?,
            Setting::MeshListen => mesh.listen = text(raw)?.to_string(),
            Setting::SharedKey => mesh.shared_key = text(raw)?.to_string(),
            Setting::MeshAllowPlainHttp => mesh.allow_plain_http = boolean(raw)?,
            Setting::MeshAllowRemote => mesh.allow_remote = boolean(raw)?,
            Setting::Sandbox => mesh.sandbox = boolean(raw)?,
            Setting::MeshMaxRequestBytes => {
                mesh.max_request_bytes = number(raw, "a number of bytes")?
            }
            Setting::MeshMaxBufferedBytes => {
                mesh.max_buffered_bytes = number(raw, "a number of bytes")?
            }
            Setting::MeshMaxConnections => {
                mesh.max_connections = number(raw, "a number of connections")?
            }
            Setting::MeshTokenWindowSecs => {
                mesh.token_window_secs = number(raw, "a number of seconds")?
            }
            Setting::MeshReplayNonces => mesh.replay_nonces = number(raw, "a number of nonces")?,
            Setting::MeshHeaderTimeoutMs => {
                mesh.header_timeout_ms = number(raw, "a number of milliseconds")?
            }
            Setting::MeshBodyTimeoutMs => {
                mesh.body_timeout_ms = number(raw, "a number of milliseconds")?
            }
            Setting::MeshIdleTimeoutMs => {
                mesh.idle_timeout_ms = number(raw, "a number of milliseconds")?
            }
            Setting::LogFormat => config.log.format = log_format(raw)?,
            Setting::LogLevel => config.log.level = text(raw)?.to_string(),
            Setting::ServicesDirectory => config.services.directory = Some(PathBuf::from(raw)),
            Setting::ServicesSeed => config.services.seed = number(raw, "a number")?,
            Setting::ServicesPatients => config.services.patients = number(raw, "a number")?,
            Setting::ServicesMaxBodyBytes => {
                config.services.max_body_bytes = number(raw, "a number of bytes")?
            }
            Setting::ServicesMaxPending => config.services.max_pending = number(raw, "a number")?,
            Setting::ServicesMaxProviders => {
                config.services.max_providers = number(raw, "a number")?
            }
            Setting::ServicesMaxRemembered => {
                config.services.max_remembered = number(raw, "a number")?
            }
            Setting::ServicesProviderQueue => {
                config.services.provider_queue = number(raw, "a number")?
            }
            Setting::ServicesCooldownMs => {
                config.services.cooldown_ms = number(raw, "a number of milliseconds")?
            }
            Setting::ServicesTickMs => {
                config.services.tick_ms = number(raw, "a number of milliseconds")?
            }
            Setting::ServicesMaxSummaries => {
                config.services.max_summaries = number(raw, "a number")?
            }
            Setting::ServicesMaxPrescriptions => {
                config.services.max_prescriptions = number(raw, "a number")?
            }
        }
        Ok(())
    }
}

/// Whether a secret's value may be shown: it is empty or the public
/// default shared key (`BackBone`, in every MESH client's documentation).
pub fn secret_is_public(value: &str) -> bool {
    value.is_empty() || value == DEFAULT_SHARED_KEY
}

/// A secret's value as shown to the operator: the public default
/// (`BackBone`) and the empty value as they are, anything else as a
/// placeholder (its length only) that is clearly not the value.
pub fn shown_secret(value: &str) -> String {
    if secret_is_public(value) {
        format!("{value:?}")
    } else {
        format!("<redacted: {} bytes>", value.len())
    }
}

fn text(raw: &OsStr) -> Result<&str, String> {
    raw.to_str()
        .ok_or_else(|| "UTF-8 text (the value contains invalid UTF-8)".to_string())
}

/// A non-negative whole number that fits `T`.
fn number<T: TryFrom<u64>>(raw: &OsStr, what: &str) -> Result<T, String> {
    let max = max_of::<T>();
    let expected = || format!("{what}: a whole number from 0 to {max}, digits only");
    let s = text(raw).map_err(|_| expected())?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    let n: u64 = s.parse().map_err(|_| expected())?;
    T::try_from(n).map_err(|_| expected())
}

/// The largest `u64` that converts into `T`.
fn max_of<T: TryFrom<u64>>() -> u64 {
    // The candidates are the maxima of u64, usize and u32, largest first.
    [u64::MAX, usize::MAX as u64, u64::from(u32::MAX)]
        .into_iter()
        .find(|&m| T::try_from(m).is_ok())
        .unwrap_or(0)
}

/// `true` or `false`, as in the file.
fn boolean(raw: &OsStr) -> Result<bool, String> {
    match raw.to_str() {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err("a boolean: \"true\" or \"false\"".to_string()),
    }
}

fn log_format(raw: &OsStr) -> Result<LogFormat, String> {
    match raw.to_str() {
        Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        _ => Err("a log format: \"text\" or \"json\"".to_string()),
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The config file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(&'static str),
    /// This command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut keys = BTreeSet::new();
        let mut envs = BTreeSet::new();
        let mut flags = BTreeSet::new();
        for s in Setting::ALL {
            assert!(keys.insert(s.key()), "{s:?}");
            assert!(envs.insert(s.env()), "{s:?}");
            assert!(flags.insert(s.flag()), "{s:?}");
            assert!(s.env().starts_with("SPINE_"));
            assert!(s.flag().starts_with("--"));
            let (section, field) = s.section_and_field();
            assert!(Setting::SECTIONS.contains(&section));
            assert!(!field.is_empty());
        }
    }

    #[test]
    fn numbers_are_strict_and_say_what_they_want() {
        let mut c = NodeConfig::default();
        Setting::SegmentBytes
            .apply(&mut c, OsStr::new("8192"))
            .unwrap();
        assert_eq!(c.storage.segment_bytes, 8192);
        for bad in ["", "-1", "+5", " 5", "5 ", "1e6", "12MiB", "0x10"] {
            let e = Setting::SegmentBytes
                .apply(&mut c, OsStr::new(bad))
                .unwrap_err();
            assert!(e.contains("whole number"), "{bad:?}: {e}");
        }
        let e = Setting::MaxRecordBytes
            .apply(&mut c, OsStr::new("4294967296"))
            .unwrap_err();
        assert!(e.contains("0 to 4294967295"), "{e}");
        let e = Setting::SegmentBytes
            .apply(&mut c, OsStr::new("99999999999999999999999"))
            .unwrap_err();
        assert!(e.contains("18446744073709551615"), "{e}");
    }

    #[test]
    fn store_limits_fill_the_storage_section() {
        let mut c = NodeConfig::default();
        Setting::MaxMessages
            .apply(&mut c, OsStr::new("1000"))
            .unwrap();
        Setting::MaxInboxDepth
            .apply(&mut c, OsStr::new("10"))
            .unwrap();
        assert_eq!(
            (c.storage.max_messages, c.storage.max_inbox_depth),
            (1000, 10)
        );
        let store = c.storage.store();
        assert_eq!((store.max_messages, store.max_inbox_depth), (1000, 10));
        for bad in ["", "-1", "1e6", "5M", "18446744073709551616"] {
            let e = Setting::MaxInboxDepth
                .apply(&mut c, OsStr::new(bad))
                .unwrap_err();
            assert!(e.contains("a number of messages"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn durations_are_seconds() {
        let mut c = NodeConfig::default();
        Setting::InboxExpiry
            .apply(&mut c, OsStr::new("60"))
            .unwrap();
        assert_eq!(c.storage.inbox_expiry, Duration::from_secs(60));
    }

    #[test]
    fn log_format_names() {
        let mut c = NodeConfig::default();
        Setting::LogFormat
            .apply(&mut c, OsStr::new("json"))
            .unwrap();
        assert_eq!(c.log.format, LogFormat::Json);
        let e = Setting::LogFormat
            .apply(&mut c, OsStr::new("JSON"))
            .unwrap_err();
        assert!(e.contains("\"text\" or \"json\""));
    }

    #[test]
    fn booleans_are_true_or_false_only() {
        let mut c = NodeConfig::default();
        Setting::MetricsEnabled
            .apply(&mut c, OsStr::new("false"))
            .unwrap();
        assert!(!c.metrics.enabled);
        Setting::MetricsAllowRemote
            .apply(&mut c, OsStr::new("true"))
            .unwrap();
        assert!(c.metrics.allow_remote);
        for bad in ["", "yes", "1", "TRUE", "on"] {
            let e = Setting::MetricsEnabled
                .apply(&mut c, OsStr::new(bad))
                .unwrap_err();
            assert!(e.contains("\"true\" or \"false\""), "{bad:?}: {e}");
        }
    }

    #[test]
    fn runtime_numbers_fill_the_runtime_section() {
        let mut c = NodeConfig::default();
        Setting::Partitions.apply(&mut c, OsStr::new("3")).unwrap();
        Setting::ShutdownDrainMs
            .apply(&mut c, OsStr::new("250"))
            .unwrap();
        assert_eq!(c.runtime.partitions, 3);
        assert_eq!(c.runtime.shutdown_drain_ms, 250);
        let e = Setting::Partitions
            .apply(&mut c, OsStr::new("4294967296"))
            .unwrap_err();
        assert!(e.contains("0 to 4294967295"), "{e}");
    }

    #[test]
    fn network_values_fill_the_network_section() {
        let mut c = NodeConfig::default();
        for (setting, raw) in [
            (Setting::NativeEnabled, "false"),
            (Setting::NativeListen, "127.0.0.1:0"),
            (Setting::QuicEnabled, "false"),
            (Setting::QuicListen, "[::1]:7777"),
            (Setting::NetworkAllowRemote, "true"),
            (Setting::TlsCert, "/etc/spine/cert.pem"),
            (Setting::TlsKey, "/etc/spine/key.pem"),
            (Setting::ClientCa, "/etc/spine/ca.pem"),
            (Setting::RequireClientCert, "true"),
            (Setting::MaxConnections, "12"),
            (Setting::MaxInFlightPerConnection, "34"),
            (Setting::MaxPayloadBytes, "65536"),
            (Setting::DownloadPieceBytes, "4096"),
            (Setting::HandshakeTimeoutMs, "250"),
            (Setting::MaxConnectionBufferedBytes, "1048576"),
            (Setting::PushInlineBytes, "0"),
            (Setting::ServerName, "spine-a"),
        ] {
            setting.apply(&mut c, OsStr::new(raw)).unwrap();
        }
        let n = &c.network;
        assert!(!n.native_enabled && !n.quic_enabled);
        assert_eq!(n.native_listen, "127.0.0.1:0");
        assert_eq!(n.quic_listen, "[::1]:7777");
        assert!(n.allow_remote && n.require_client_cert);
        assert_eq!(n.tls_cert, Some(PathBuf::from("/etc/spine/cert.pem")));
        assert_eq!(n.tls_key, Some(PathBuf::from("/etc/spine/key.pem")));
        assert_eq!(n.client_ca, Some(PathBuf::from("/etc/spine/ca.pem")));
        assert_eq!(
            (n.max_connections, n.max_in_flight, n.max_payload_bytes),
            (12, 34, 65536)
        );
        assert_eq!(
            (n.download_piece_bytes, n.handshake_timeout_ms),
            (4096, 250)
        );
        assert_eq!(n.max_connection_buffered_bytes, 1 << 20);
        assert_eq!(n.push_inline_bytes, 0);
        assert_eq!(n.server_name, "spine-a");
        // Storage's in-flight limit is a different setting.
        assert_eq!(
            c.storage.max_in_flight,
            NodeConfig::default().storage.max_in_flight
        );
        let e = Setting::MaxPayloadBytes
            .apply(&mut c, OsStr::new("4294967296"))
            .unwrap_err();
        assert!(e.contains("0 to 4294967295"), "{e}");
        let e = Setting::RequireClientCert
            .apply(&mut c, OsStr::new("yes"))
            .unwrap_err();
        assert!(e.contains("\"true\" or \"false\""), "{e}");
    }

    #[test]
    fn mesh_values_fill_the_mesh_section() {
        let mut c = NodeConfig::default();
        for (setting, raw) in [
            (Setting::MeshEnabled, "false"),
            (Setting::MeshListen, "[::1]:8800"),
            (Setting::SharedKey, "s3cret"),
            (Setting::MeshAllowPlainHttp, "true"),
            (Setting::MeshAllowRemote, "true"),
            (Setting::Sandbox, "true"),
            (Setting::MeshMaxRequestBytes, "2048"),
            (Setting::MeshMaxBufferedBytes, "4096"),
            (Setting::MeshMaxConnections, "12"),
            (Setting::MeshTokenWindowSecs, "600"),
            (Setting::MeshReplayNonces, "34"),
            (Setting::MeshHeaderTimeoutMs, "250"),
            (Setting::MeshBodyTimeoutMs, "350"),
            (Setting::MeshIdleTimeoutMs, "450"),
        ] {
            setting.apply(&mut c, OsStr::new(raw)).unwrap();
        }
        let m = &c.mesh;
        assert!(!m.enabled);
        assert_eq!(m.listen, "[::1]:8800");
        assert_eq!(m.shared_key, "s3cret");
        assert!(m.allow_plain_http && m.allow_remote && m.sandbox);
        assert_eq!((m.max_request_bytes, m.max_buffered_bytes), (2048, 4096));
        assert_eq!(
            (m.max_connections, m.token_window_secs, m.replay_nonces),
            (12, 600, 34)
        );
        assert_eq!(
            (m.header_timeout_ms, m.body_timeout_ms, m.idle_timeout_ms),
            (250, 350, 450)
        );
        // The network's connection limit is a different setting.
        assert_eq!(
            c.network.max_connections,
            NodeConfig::default().network.max_connections
        );
        let e = Setting::Sandbox
            .apply(&mut c, OsStr::new("yes"))
            .unwrap_err();
        assert!(e.contains("\"true\" or \"false\""), "{e}");
        let e = Setting::MeshTokenWindowSecs
            .apply(&mut c, OsStr::new("2h"))
            .unwrap_err();
        assert!(e.contains("whole number"), "{e}");
    }

    #[test]
    fn only_the_shared_key_is_secret_and_it_is_shown_redacted() {
        let secret: Vec<Setting> = Setting::ALL.into_iter().filter(|s| s.is_secret()).collect();
        assert_eq!(secret, vec![Setting::SharedKey]);
        assert_eq!(shown_secret("BackBone"), "\"BackBone\"");
        assert_eq!(shown_secret(""), "\"\"");
        assert_eq!(shown_secret("hunter2"), "<redacted: 7 bytes>");
        // What a bad value is refused with never contains the value.
        let mut c = NodeConfig::default();
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let e = Setting::SharedKey
                .apply(&mut c, OsStr::from_bytes(b"hunter\xff"))
                .unwrap_err();
            assert!(!e.contains("hunter"), "{e}");
        }
        Setting::SharedKey
            .apply(&mut c, OsStr::new("hunter2"))
            .unwrap();
        assert_eq!(c.mesh.shared_key, "hunter2");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_is_an_error_for_text_but_fine_for_paths() {
        use std::os::unix::ffi::OsStrExt;
        let raw = OsStr::from_bytes(b"/tmp/\xff");
        let mut c = NodeConfig::default();
        Setting::DataDir.apply(&mut c, raw).unwrap();
        assert_eq!(c.storage.data_dir, PathBuf::from(raw));
        assert!(Setting::LogLevel.apply(&mut c, raw).is_err());
        assert!(Setting::MetricsListen.apply(&mut c, raw).is_err());
        assert!(Setting::NativeListen.apply(&mut c, raw).is_err());
        assert!(Setting::ServerName.apply(&mut c, raw).is_err());
        assert!(Setting::MeshListen.apply(&mut c, raw).is_err());
        assert!(Setting::SharedKey.apply(&mut c, raw).is_err());
        Setting::TlsCert.apply(&mut c, raw).unwrap();
        assert_eq!(c.network.tls_cert, Some(PathBuf::from(raw)));
        assert!(Setting::SegmentBytes.apply(&mut c, raw).is_err());
    }
}
