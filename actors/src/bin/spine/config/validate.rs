//! Rules on the merged configuration.
//!
//! Every rule is checked and every broken one reported together, each naming
//! the setting, its value, where the value came from and what to do, so an
//! operator fixes everything in one pass. The ranges are at least as strict
//! as `WalConfig::validate` and the writer's, so storage never sees a value
//! it would refuse or silently clamp.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::Path;

use spine_actors::mesh::MeshConfig;
use spine_actors::node::{RuntimeConfig, MAX_STORED_MESSAGES};
use spine_actors::services::ServicesConfig;
use spine_actors::transport::NetworkConfig;
use spine_core::directory::credentials::{MAX_HASH_ITERATIONS, MIN_HASH_ITERATIONS};

use super::error::{ConfigError, Problem};
use super::settings::{shown_secret, Setting};
use super::Loaded;

/// Segment size range. The ceiling bounds memory: recovery reads one whole
/// segment into memory at a time.
pub const SEGMENT_BYTES: RangeInclusive<u64> = 4096..=(4 << 30);
/// Record size range (the log's own limit).
pub const MAX_RECORD_BYTES: RangeInclusive<u32> = 1..=(1 << 30);
/// Records per group commit (the log's own limit).
pub const MAX_BATCH_RECORDS: RangeInclusive<usize> = 1..=(1 << 20);
/// Bytes per group commit.
pub const MAX_BATCH_BYTES: RangeInclusive<usize> = 1..=(1 << 30);
/// Appends queued or in flight.
pub const MAX_IN_FLIGHT: RangeInclusive<usize> = 1..=(1 << 24);
/// Longest retention accepted for either duration: ten years, in seconds.
pub const MAX_RETENTION_SECS: u64 = 3650 * 24 * 3600;
/// Messages one partition keeps at once (the node's own limit,
/// `StorageConfig::validate`); the inbox depth is 1 up to this setting.
pub const MAX_MESSAGES: RangeInclusive<u64> = 1..=MAX_STORED_MESSAGES;

struct Checker<'a> {
    loaded: &'a Loaded,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn fail(&mut self, setting: Setting, value: impl ToString, message: impl Into<String>) {
        self.problems.push(Problem {
            setting,
            origin: self.loaded.origin(setting),
            value: value.to_string(),
            message: message.into(),
        });
    }

    fn range<T>(&mut self, setting: Setting, value: T, range: RangeInclusive<T>, unit: &str)
    where
        T: PartialOrd + std::fmt::Display + Copy,
    {
        if !range.contains(&value) {
            self.fail(
                setting,
                value,
                format!(
                    "must be between {} and {} {unit}",
                    range.start(),
                    range.end()
                ),
            );
        }
    }
}

/// Checks `loaded`, returning every problem found.
pub fn validate(loaded: &Loaded) -> Result<(), ConfigError> {
    let mut c = Checker {
        loaded,
        problems: Vec::new(),
    };
    storage(&mut c);
    directory(&mut c);
    runtime(&mut c);
    metrics(&mut c);
    network(&mut c);
    mesh(&mut c);
    log(&mut c);
    services(&mut c);
    if c.problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            problems: c.problems,
        })
    }
}

fn storage(c: &mut Checker<'_>) {
    let s = &c.loaded.config.storage;
    data_dir(c, &s.data_dir);
    c.range(
        Setting::SegmentBytes,
        s.segment_bytes,
        SEGMENT_BYTES,
        "bytes",
    );
    c.range(
        Setting::MaxRecordBytes,
        s.max_record_bytes,
        MAX_RECORD_BYTES,
        "bytes",
    );
    c.range(
        Setting::MaxBatchRecords,
        s.max_batch_records,
        MAX_BATCH_RECORDS,
        "records",
    );
    c.range(
        Setting::MaxBatchBytes,
        s.max_batch_bytes,
        MAX_BATCH_BYTES,
        "bytes",
    );
    c.range(
        Setting::MaxInFlight,
        s.max_in_flight,
        MAX_IN_FLIGHT,
        "records",
    );
    let expiry = s.inbox_expiry.as_secs();
    let purge = s.purge_after.as_secs();
    c.range(
        Setting::InboxExpiry,
        expiry,
        1..=MAX_RETENTION_SECS,
        "seconds",
    );
    if purge > MAX_RETENTION_SECS {
        c.range(
            Setting::PurgeAfter,
            purge,
            1..=MAX_RETENTION_SECS,
            "seconds",
        );
    } else if purge < expiry {
        c.fail(
            Setting::PurgeAfter,
            purge,
            format!(
                "is shorter than storage.inbox_expiry ({expiry} seconds, from {}); a message must stay until it expires, so set purge_after to at least inbox_expiry",
                c.loaded.origin(Setting::InboxExpiry)
            ),
        );
    }
    store_limits(c);
}

/// `storage.max_messages`, and `storage.max_inbox_depth` up to it (one
/// inbox lives in one partition's store). While `max_messages` is out of
/// its own range (reported as such) the depth is judged against the
/// largest it may be, so the one mistake is not reported twice.
fn store_limits(c: &mut Checker<'_>) {
    let s = &c.loaded.config.storage;
    let (messages, depth) = (s.max_messages, s.max_inbox_depth);
    c.range(Setting::MaxMessages, messages, MAX_MESSAGES, "messages");
    if !MAX_MESSAGES.contains(&messages) {
        c.range(Setting::MaxInboxDepth, depth, MAX_MESSAGES, "messages");
    } else if depth == 0 {
        c.range(Setting::MaxInboxDepth, depth, 1..=messages, "messages");
    } else if depth > messages {
        c.fail(
            Setting::MaxInboxDepth,
            depth,
            format!(
                "is larger than storage.max_messages ({messages}, from {}; flag {}, env {}); an inbox cannot hold more messages than its partition keeps, so set max_inbox_depth to at most max_messages",
                c.loaded.origin(Setting::MaxMessages),
                Setting::MaxMessages.flag(),
                Setting::MaxMessages.env()
            ),
        );
    }
}

fn data_dir(c: &mut Checker<'_>, dir: &Path) {
    let shown = dir.display();
    if dir.as_os_str().is_empty() {
        c.fail(
            Setting::DataDir,
            "\"\"",
            "is empty; give the directory that holds (or will hold) the log",
        );
        return;
    }
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => c.fail(
            Setting::DataDir,
            shown,
            "exists but is not a directory; point it at a directory (it is created if missing)",
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => c.fail(
            Setting::DataDir,
            shown,
            format!("cannot be checked ({e}); fix the path or its permissions"),
        ),
    }
}

fn directory(c: &mut Checker<'_>) {
    let d = &c.loaded.config.directory;
    let (mailboxes, workflows, toml) = (d.mailboxes.clone(), d.workflows.clone(), d.toml.clone());
    let iterations = d.hash_iterations;
    if let Some(toml) = &toml {
        if mailboxes.is_some() || workflows.is_some() {
            let other = if mailboxes.is_some() {
                Setting::Mailboxes
            } else {
                Setting::Workflows
            };
            c.fail(
                Setting::DirectoryToml,
                toml.display(),
                format!(
                    "conflicts with {} (from {}): choose either the native TOML directory or the mesh-sandbox JSONL pair (mailboxes + workflows), not both",
                    other.key(),
                    c.loaded.origin(other)
                ),
            );
        }
    }
    match (&mailboxes, &workflows) {
        (Some(m), None) => c.fail(
            Setting::Mailboxes,
            m.display(),
            format!(
                "is given without directory.workflows; give both mesh-sandbox files ({} and {})",
                Setting::Mailboxes.flag(),
                Setting::Workflows.flag()
            ),
        ),
        (None, Some(w)) => c.fail(
            Setting::Workflows,
            w.display(),
            format!(
                "is given without directory.mailboxes; give both mesh-sandbox files ({} and {})",
                Setting::Mailboxes.flag(),
                Setting::Workflows.flag()
            ),
        ),
        _ => {}
    }
    for (setting, path) in [
        (Setting::Mailboxes, &mailboxes),
        (Setting::Workflows, &workflows),
        (Setting::DirectoryToml, &toml),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            c.fail(setting, "\"\"", "is empty; give a file path");
        }
    }
    c.range(
        Setting::HashIterations,
        iterations,
        MIN_HASH_ITERATIONS..=MAX_HASH_ITERATIONS,
        "iterations",
    );
}

/// Copies `setting`'s field from `from` into `into` and returns its value
/// as shown to the operator; `None` if `setting` is not a runtime setting.
pub fn copy_runtime_field(
    setting: Setting,
    from: &RuntimeConfig,
    into: &mut RuntimeConfig,
) -> Option<String> {
    let shown = match setting {
        Setting::Partitions => {
            into.partitions = from.partitions;
            from.partitions.to_string()
        }
        Setting::PartitionQueue => {
            into.partition_queue = from.partition_queue;
            from.partition_queue.to_string()
        }
        Setting::MaxRestarts => {
            into.max_restarts = from.max_restarts;
            from.max_restarts.to_string()
        }
        Setting::RestartWindowSecs => {
            into.restart_window_secs = from.restart_window_secs;
            from.restart_window_secs.to_string()
        }
        Setting::ExpiryIntervalMs => {
            into.expiry_interval_ms = from.expiry_interval_ms;
            from.expiry_interval_ms.to_string()
        }
        Setting::ExpiryBatch => {
            into.expiry_batch = from.expiry_batch;
            from.expiry_batch.to_string()
        }
        Setting::SubscriberBuffer => {
            into.subscriber_buffer = from.subscriber_buffer;
            from.subscriber_buffer.to_string()
        }
        Setting::MaxInboxPage => {
            into.max_inbox_page = from.max_inbox_page;
            from.max_inbox_page.to_string()
        }
        Setting::RequestWaitMs => {
            into.request_wait_ms = from.request_wait_ms;
            from.request_wait_ms.to_string()
        }
        Setting::ShutdownDrainMs => {
            into.shutdown_drain_ms = from.shutdown_drain_ms;
            from.shutdown_drain_ms.to_string()
        }
        Setting::CompactionCheckMs => {
            into.compaction_check_ms = from.compaction_check_ms;
            from.compaction_check_ms.to_string()
        }
        Setting::CompactionMinLogBytes => {
            into.compaction_min_log_bytes = from.compaction_min_log_bytes;
            from.compaction_min_log_bytes.to_string()
        }
        Setting::CompactionMaxAmplification => {
            into.compaction_max_amplification = from.compaction_max_amplification;
            from.compaction_max_amplification.to_string()
        }
        Setting::HugePages => {
            into.huge_pages = from.huge_pages;
            from.huge_pages.to_string()
        }
        _ => return None,
    };
    Some(shown)
}

/// The runtime's own rules (`RuntimeConfig::validate`) are the only source
/// of its ranges. It stops at the first problem and does not say which
/// setting, so each value is checked alone over the defaults (every
/// problem reported, each blamed on its setting and origin), then the whole.
fn runtime(c: &mut Checker<'_>) {
    let merged = c.loaded.config.runtime.clone();
    let mut found = false;
    let runtime_settings = Setting::in_section("runtime");
    for &setting in &runtime_settings {
        let mut alone = RuntimeConfig::default();
        let Some(shown) = copy_runtime_field(setting, &merged, &mut alone) else {
            continue;
        };
        if let Err(why) = alone.validate() {
            let (_, field) = setting.section_and_field();
            let why = why
                .strip_prefix(field)
                .map_or(why.as_str(), str::trim_start);
            c.fail(setting, shown, why.to_string());
            found = true;
        }
    }
    if !found {
        if let Err(why) = merged.validate() {
            // A rule across settings: blame the first one it names.
            let setting = runtime_settings
                .into_iter()
                .find(|s| why.contains(s.section_and_field().1))
                .unwrap_or(Setting::Partitions);
            let mut shown = RuntimeConfig::default();
            let value = copy_runtime_field(setting, &merged, &mut shown).unwrap_or_default();
            c.fail(setting, value, why);
        }
    }
}

/// How to expose the endpoint beyond loopback, for messages.
const ALLOW_REMOTE_HELP: &str = "metrics.allow_remote = true (flag --metrics-allow-remote, env SPINE_METRICS_ALLOW_REMOTE=true)";

fn metrics(c: &mut Checker<'_>) {
    let m = c.loaded.config.metrics.clone();
    let shown = format!("{:?}", m.listen);
    let addr: SocketAddr = match m.listen.parse() {
        Ok(addr) => addr,
        Err(_) => {
            c.fail(
                Setting::MetricsListen,
                shown,
                "is not a socket address; write IP:PORT, e.g. 127.0.0.1:9701 or [::1]:9701 (host names are not resolved)",
            );
            return;
        }
    };
    if addr.port() == 0 {
        c.fail(
            Setting::MetricsListen,
            shown,
            "has port 0, which would pick a random port nobody can scrape; give a fixed port such as 9701",
        );
        return;
    }
    if m.enabled && !m.allow_remote && !addr.ip().is_loopback() {
        c.fail(
            Setting::MetricsListen,
            shown,
            format!(
                "is not a loopback address: the metrics endpoint has no authentication, so it listens on 127.0.0.1 or [::1] unless exposing it is deliberate; use a loopback address, or set {ALLOW_REMOTE_HELP} (currently {}, from {})",
                m.allow_remote,
                c.loaded.origin(Setting::MetricsAllowRemote)
            ),
        );
    }
}

/// A path setting's value as shown to the operator.
fn shown_path(path: &Option<std::path::PathBuf>) -> String {
    path.as_ref().map_or_else(
        || "not set".to_string(),
        |p| format!("{:?}", p.display().to_string()),
    )
}

/// Copies `setting`'s field from `from` into `into` and returns its value
/// as shown to the operator; `None` if `setting` is not a network setting.
pub fn copy_network_field(
    setting: Setting,
    from: &NetworkConfig,
    into: &mut NetworkConfig,
) -> Option<String> {
    let shown = match setting {
        Setting::NativeEnabled => {
            into.native_enabled = from.native_enabled;
            from.native_enabled.to_string()
        }
        Setting::NativeListen => {
            into.native_listen.clone_from(&from.native_listen);
            format!("{:?}", from.native_listen)
        }
        Setting::QuicEnabled => {
            into.quic_enabled = from.quic_enabled;
            from.quic_enabled.to_string()
        }
        Setting::QuicListen => {
            into.quic_listen.clone_from(&from.quic_listen);
            format!("{:?}", from.quic_listen)
        }
        Setting::NetworkAllowRemote => {
            into.allow_remote = from.allow_remote;
            from.allow_remote.to_string()
        }
        Setting::TlsCert => {
            into.tls_cert.clone_from(&from.tls_cert);
            shown_path(&from.tls_cert)
        }
        Setting::TlsKey => {
            into.tls_key.clone_from(&from.tls_key);
            shown_path(&from.tls_key)
        }
        Setting::ClientCa => {
            into.client_ca.clone_from(&from.client_ca);
            shown_path(&from.client_ca)
        }
        Setting::RequireClientCert => {
            into.require_client_cert = from.require_client_cert;
            from.require_client_cert.to_string()
        }
        Setting::MaxConnections => {
            into.max_connections = from.max_connections;
            from.max_connections.to_string()
        }
        Setting::MaxInFlightPerConnection => {
            into.max_in_flight = from.max_in_flight;
            from.max_in_flight.to_string()
        }
        Setting::MaxPayloadBytes => {
            into.max_payload_bytes = from.max_payload_bytes;
            from.max_payload_bytes.to_string()
        }
        Setting::DownloadPieceBytes => {
            into.download_piece_bytes = from.download_piece_bytes;
            from.download_piece_bytes.to_string()
        }
        Setting::HandshakeTimeoutMs => {
            into.handshake_timeout_ms = from.handshake_timeout_ms;
            from.handshake_timeout_ms.to_string()
        }
        Setting::MaxConnectionBufferedBytes => {
            into.max_connection_buffered_bytes = from.max_connection_buffered_bytes;
            from.max_connection_buffered_bytes.to_string()
        }
        Setting::PushInlineBytes => {
            into.push_inline_bytes = from.push_inline_bytes;
            from.push_inline_bytes.to_string()
        }
        Setting::ServerName => {
            into.server_name.clone_from(&from.server_name);
            format!("{:?}", from.server_name)
        }
        _ => return None,
    };
    Some(shown)
}

/// The settings of `section` a message names (by field name, outside
/// quoted values), in the order named, each once.
fn named_settings(section: &str, message: &str) -> Vec<Setting> {
    let mut unquoted = String::with_capacity(message.len());
    let (mut quoted, mut escaped) = (false, false);
    for ch in message.chars() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ if !quoted => unquoted.push(ch),
            _ => {}
        }
    }
    let in_section = Setting::in_section(section);
    let mut named = Vec::new();
    // `.` separates too, so `storage.max_record_bytes` does not name a
    // field of this section called `max_record_bytes`: a word preceded by
    // `.` is another section's.
    let mut previous_dot = false;
    for word in unquoted.split_inclusive(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        let ends_in_dot = word.ends_with('.');
        let word = word.trim_end_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        if !previous_dot {
            if let Some(setting) = in_section
                .iter()
                .copied()
                .find(|s| s.section_and_field().1 == word)
            {
                if !named.contains(&setting) {
                    named.push(setting);
                }
            }
        }
        previous_dot = ends_in_dot;
    }
    named
}

/// A section whose own `validate` is the only source of its ranges and
/// cross-setting rules, and stops at the first problem, naming the fields
/// involved (blamed field first).
struct SectionRules<T, V, R> {
    /// The file section.
    section: &'static str,
    /// `copy_*_field` for the section.
    copy: fn(Setting, &T, &mut T) -> Option<String>,
    /// The section's own check.
    validate: V,
    /// Blamed for a problem that names no setting (not expected).
    fallback: Setting,
    /// Settings of other sections the rules depend on, with their values
    /// as shown: mentioned (value and origin) when a message names their
    /// dotted key.
    related: Vec<(Setting, String)>,
    /// Called when putting the blamed setting back to its default changes
    /// nothing (so the problem lies with a related setting): stops
    /// `validate` judging by the related settings and says whether it did,
    /// so that checking goes on to the rest of the section; if not, it
    /// stops there.
    relax: R,
}

/// Checks a section by its own rules, blaming each problem on one setting.
///
/// Checking each value alone over the defaults, as for the runtime, would
/// wrongly blame a `tls_cert` given with its key or a remote address given
/// with `allow_remote`; so the merged section is checked, the problem
/// blamed on the first setting it names that was changed from its default
/// (with its origin, and how to set the others it names), that setting put
/// back to its default, and the check repeated until it passes. A problem
/// that names a setting already put back may be an artefact of that reset,
/// so it is not reported (it shows once the first problem is fixed).
fn check_section<T, V, R>(c: &mut Checker<'_>, merged: &T, rules: &SectionRules<T, V, R>)
where
    T: Clone + PartialEq + Default,
    V: Fn(&T) -> Result<(), String>,
    R: Fn() -> bool,
{
    let defaults = T::default();
    let copy = rules.copy;
    let field_set = |setting: Setting, config: &T| {
        let mut reset = config.clone();
        copy(setting, &defaults, &mut reset);
        reset != *config
    };
    let mut working = merged.clone();
    let mut reset: Vec<Setting> = Vec::new();
    // Each round puts one more setting back to its default, or relaxes
    // the related settings (once): bounded.
    for _ in 0..Setting::in_section(rules.section).len() + 2 {
        let Err(why) = (rules.validate)(&working) else {
            return;
        };
        let named = named_settings(rules.section, &why);
        let mut scratch = T::default();
        let Some(setting) = named
            .iter()
            .copied()
            .find(|s| field_set(*s, &working))
            .or_else(|| named.first().copied())
        else {
            // Names no setting (not expected): report it whole, once.
            let shown = copy(rules.fallback, merged, &mut scratch).unwrap_or_default();
            c.fail(rules.fallback, shown, why);
            return;
        };
        let before = working.clone();
        copy(setting, &defaults, &mut working);
        if named.iter().any(|s| reset.contains(s)) {
            if working == before && !(rules.relax)() {
                return;
            }
            reset.push(setting);
            continue;
        }
        let shown = copy(setting, merged, &mut scratch).unwrap_or_default();
        let (_, field) = setting.section_and_field();
        let mut message = match why.strip_prefix(field).map(str::trim_start) {
            Some(rest) if rest.starts_with("must ") || rest.starts_with("needs ") => {
                rest.to_string()
            }
            _ => why.clone(),
        };
        for other in named.iter().copied().filter(|s| *s != setting) {
            let value = copy(other, merged, &mut scratch).unwrap_or_default();
            note_other(c, &mut message, other, &value);
        }
        for (other, value) in &rules.related {
            if why.contains(other.key()) {
                note_other(c, &mut message, *other, value);
            }
        }
        c.fail(setting, shown, message);
        if working == before && !(rules.relax)() {
            return;
        }
        reset.push(setting);
    }
}

/// Adds another setting a problem involves to its message: value, origin,
/// and how to set it.
fn note_other(c: &Checker<'_>, message: &mut String, other: Setting, value: &str) {
    let _ = write!(
        message,
        "; {} is {value} (from {}; flag {}, env {})",
        other.key(),
        c.loaded.origin(other),
        other.flag(),
        other.env()
    );
}

/// The transport's own rules (`NetworkConfig::validate`) are the only
/// source of the `[network]` ranges and cross-setting rules (see
/// [`check_section`] for how each problem is blamed).
fn network(c: &mut Checker<'_>) {
    let merged = c.loaded.config.network.clone();
    for (setting, path) in [
        (Setting::TlsCert, &merged.tls_cert),
        (Setting::TlsKey, &merged.tls_key),
        (Setting::ClientCa, &merged.client_ca),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            c.fail(setting, "\"\"", "is empty; give the path of a PEM file");
        }
    }
    let rules = SectionRules {
        section: "network",
        copy: copy_network_field,
        validate: NetworkConfig::validate,
        fallback: Setting::NativeListen,
        related: Vec::new(),
        relax: || false,
    };
    check_section(c, &merged, &rules);
}

/// Copies `setting`'s field from `from` into `into` and returns its value
/// as shown to the operator (the shared key redacted, see
/// [`shown_secret`]); `None` if `setting` is not a mesh setting.
pub fn copy_mesh_field(
    setting: Setting,
    from: &MeshConfig,
    into: &mut MeshConfig,
) -> Option<String> {
    let shown = match setting {
        Setting::MeshEnabled => {
            into.enabled = from.enabled;
            from.enabled.to_string()
        }
        Setting::MeshListen => {
            into.listen.clone_from(&from.listen);
            format!("{:?}", from.listen)
        }
        Setting::SharedKey => {
            into.shared_key.clone_from(&from.shared_key);
            shown_secret(&from.shared_key)
        }
        Setting::MeshAllowPlainHttp => {
            into.allow_plain_http = from.allow_plain_http;
            from.allow_plain_http.to_string()
        }
        Setting::MeshAllowRemote => {
            into.allow_remote = from.allow_remote;
            from.allow_remote.to_string()
        }
        Setting::Sandbox => {
            into.sandbox = from.sandbox;
            from.sandbox.to_string()
        }
        Setting::MeshMaxRequestBytes => {
            into.max_request_bytes = from.max_request_bytes;
            from.max_request_bytes.to_string()
        }
        Setting::MeshMaxBufferedBytes => {
            into.max_buffered_bytes = from.max_buffered_bytes;
            from.max_buffered_bytes.to_string()
        }
        Setting::MeshMaxConnections => {
            into.max_connections = from.max_connections;
            from.max_connections.to_string()
        }
        Setting::MeshTokenWindowSecs => {
            into.token_window_secs = from.token_window_secs;
            from.token_window_secs.to_string()
        }
        Setting::MeshReplayNonces => {
            into.replay_nonces = from.replay_nonces;
            from.replay_nonces.to_string()
        }
        Setting::MeshHeaderTimeoutMs => {
            into.header_timeout_ms = from.header_timeout_ms;
            from.header_timeout_ms.to_string()
        }
        Setting::MeshBodyTimeoutMs => {
            into.body_timeout_ms = from.body_timeout_ms;
            from.body_timeout_ms.to_string()
        }
        Setting::MeshIdleTimeoutMs => {
            into.idle_timeout_ms = from.idle_timeout_ms;
            from.idle_timeout_ms.to_string()
        }
        _ => return None,
    };
    Some(shown)
}

/// The record limit the MESH API is judged against: `storage`'s, unless
/// that is out of its own range (reported as such), when the largest it
/// may be, so the one mistake is not reported twice.
fn mesh_record_limit(storage_max_record_bytes: u32) -> u64 {
    let limit = if MAX_RECORD_BYTES.contains(&storage_max_record_bytes) {
        storage_max_record_bytes
    } else {
        *MAX_RECORD_BYTES.end()
    };
    u64::from(limit)
}

/// `MeshConfig::validate` with the given TLS state and record limit, safe
/// for any `max_request_bytes`: it adds 64 KiB to that value, which would
/// overflow near `u64::MAX`, so a larger value is judged as `u64::MAX / 2`
/// (refused either way, with the same message: it does not show the value).
fn check_mesh(mesh: &MeshConfig, has_tls: bool, max_record_bytes: u64) -> Result<(), String> {
    if mesh.max_request_bytes > u64::MAX / 2 {
        let clamped = MeshConfig {
            max_request_bytes: u64::MAX / 2,
            ..mesh.clone()
        };
        return clamped.validate(has_tls, max_record_bytes);
    }
    mesh.validate(has_tls, max_record_bytes)
}

/// The MESH API's own rules (`MeshConfig::validate`) are the only source
/// of the `[mesh]` ranges and cross-setting rules (see [`check_section`]
/// for how each problem is blamed). They depend on `[network]`'s TLS
/// material and on `storage.max_record_bytes` (a chunk is one record): a
/// problem with the latter is blamed on `mesh.max_request_bytes`, naming
/// the record limit and where it came from; the rest of the section is
/// then judged against the largest record limit, so its other problems are
/// reported too. Nothing is checked while the API is disabled.
fn mesh(c: &mut Checker<'_>) {
    let config = &c.loaded.config;
    let merged = config.mesh.clone();
    let has_tls = config.network.has_tls();
    let record = config.storage.max_record_bytes;
    let limit = std::cell::Cell::new(mesh_record_limit(record));
    let largest = u64::from(*MAX_RECORD_BYTES.end());
    let rules = SectionRules {
        section: "mesh",
        copy: copy_mesh_field,
        validate: |m: &MeshConfig| check_mesh(m, has_tls, limit.get()),
        fallback: Setting::MeshListen,
        related: vec![(Setting::MaxRecordBytes, record.to_string())],
        relax: || limit.replace(largest) != largest,
    };
    check_section(c, &merged, &rules);
}

/// Level names a bare directive may be.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
const LEVEL_HELP: &str = "use a level (off, error, warn, info, debug, trace) or comma-separated directives such as \"info,spine_actors=debug\"";

fn log(c: &mut Checker<'_>) {
    let level = c.loaded.config.log.level.clone();
    let shown = format!("{level:?}");
    if level.trim().is_empty() {
        c.fail(Setting::LogLevel, shown, format!("is empty; {LEVEL_HELP}"));
        return;
    }
    // `tracing` reads a bare word as a target name, so a misspelt level
    // ("inf") would silently turn logging off; insist bare words are levels.
    let bare = level
        .split(',')
        .map(str::trim)
        .find(|d| !d.contains('=') && !LEVELS.contains(&d.to_ascii_lowercase().as_str()));
    if let Some(word) = bare {
        c.fail(
            Setting::LogLevel,
            shown,
            format!(
                "{word:?} is not a level; {LEVEL_HELP} (to filter by module write target=level)"
            ),
        );
        return;
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&level) {
        c.fail(
            Setting::LogLevel,
            shown,
            format!("is not a log filter ({e}); {LEVEL_HELP}"),
        );
    }
}

/// Copies one `[services]` setting's value from `from` into `into` and
/// returns it as shown; `None` for settings of other sections.
pub fn copy_services_field(
    setting: Setting,
    from: &ServicesConfig,
    into: &mut ServicesConfig,
) -> Option<String> {
    let shown = match setting {
        Setting::ServicesDirectory => {
            into.directory = from.directory.clone();
            from.directory
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        }
        Setting::ServicesSeed => {
            into.seed = from.seed;
            from.seed.to_string()
        }
        Setting::ServicesPatients => {
            into.patients = from.patients;
            from.patients.to_string()
        }
        Setting::ServicesMaxBodyBytes => {
            into.max_body_bytes = from.max_body_bytes;
            from.max_body_bytes.to_string()
        }
        Setting::ServicesMaxPending => {
            into.max_pending = from.max_pending;
            from.max_pending.to_string()
        }
        Setting::ServicesMaxProviders => {
            into.max_providers = from.max_providers;
            from.max_providers.to_string()
        }
        Setting::ServicesMaxRemembered => {
            into.max_remembered = from.max_remembered;
            from.max_remembered.to_string()
        }
        Setting::ServicesProviderQueue => {
            into.provider_queue = from.provider_queue;
            from.provider_queue.to_string()
        }
        Setting::ServicesCooldownMs => {
            into.cooldown_ms = from.cooldown_ms;
            from.cooldown_ms.to_string()
        }
        Setting::ServicesTickMs => {
            into.tick_ms = from.tick_ms;
            from.tick_ms.to_string()
        }
        Setting::ServicesMaxSummaries => {
            into.max_summaries = from.max_summaries;
            from.max_summaries.to_string()
        }
        Setting::ServicesMaxPrescriptions => {
            into.max_prescriptions = from.max_prescriptions;
            from.max_prescriptions.to_string()
        }
        _ => return None,
    };
    Some(shown)
}

/// `[services]`: each value checked alone over the defaults (so each
/// problem is blamed on its setting), then the whole (cross-field rules).
fn services(c: &mut Checker<'_>) {
    let merged = c.loaded.config.services.clone();
    let settings = Setting::in_section("services");
    let mut found = false;
    for &setting in &settings {
        let mut alone = ServicesConfig::default();
        let Some(shown) = copy_services_field(setting, &merged, &mut alone) else {
            continue;
        };
        if let Err(why) = alone.validate() {
            c.fail(setting, shown, why);
            found = true;
        }
    }
    if !found {
        if let Err(why) = merged.validate() {
            let setting = settings
                .into_iter()
                .find(|s| why.contains(s.key()))
                .unwrap_or(Setting::ServicesMaxPending);
            let mut shown = ServicesConfig::default();
            let value = copy_services_field(setting, &merged, &mut shown).unwrap_or_default();
            c.fail(setting, value, why);
        }
    }
}
