//! Node configuration: the settings model and how its layers combine.
//!
//! Layers, lowest to highest; a higher layer overrides a lower one setting
//! by setting:
//! 1. built-in defaults ([`NodeConfig::default`]);
//! 2. the TOML config file (`--config FILE`, else `SPINE_CONFIG`);
//! 3. environment variables (`SPINE_*`, one per setting, see
//!    [`settings::Setting`]); an empty variable counts as unset;
//! 4. command-line flags (one per setting).
//!
//! Invariants:
//! - Every setting has exactly one file key, one environment variable and
//!   one flag, all listed in [`settings::Setting::ALL`]; the tests check the
//!   table against the clap definition and the serialised model, so a
//!   setting cannot be reachable one way and not another.
//! - The directory *form* is chosen as a whole: a layer that names the
//!   native TOML directory drops JSONL paths from lower layers, and a layer
//!   that names a JSONL path drops a TOML path from lower layers. Naming
//!   both forms within one layer is a validation error.
//! - Unknown keys in the file are errors naming the key and line; every
//!   value's origin is remembered so validation errors say where to fix it.
//! - Nothing here panics on any input; every failure is a [`ConfigError`]
//!   with a stable code.
//! - A secret (`mesh.shared_key`, see [`settings::Setting::is_secret`]) is
//!   never printed by `--print-config` nor echoed by an error, unless it is
//!   the public default.

mod error;
mod file;
mod print;
pub mod settings;
pub mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use spine_actors::mesh::MeshConfig;
use spine_actors::node::{RuntimeConfig, StorageConfig};
use spine_actors::transport::NetworkConfig;
use spine_core::directory::DEFAULT_HASH_ITERATIONS;

pub use error::ConfigError;
pub use settings::{Origin, Setting};

/// Environment variable naming the config file (below `--config`).
pub const CONFIG_ENV: &str = "SPINE_CONFIG";

/// The whole node configuration, as written in the TOML file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Where and how the log is kept.
    pub storage: StorageConfig,
    /// Where the mailbox directory comes from.
    pub directory: DirectoryConfig,
    /// The actor runtime: partitions, queues, restarts, expiry, waits.
    pub runtime: RuntimeConfig,
    /// The Prometheus scrape endpoint.
    pub metrics: MetricsConfig,
    /// The native protocol's transports (TCP/TLS and QUIC): listeners, TLS
    /// material and limits.
    pub network: NetworkConfig,
    /// The MESH REST API: listener, shared key, limits (TLS material is
    /// `[network]`'s).
    pub mesh: MeshConfig,
    /// Diagnostics.
    pub log: LogConfig,
    /// Service routing (PDS, SCR, EPS and external services): the service
    /// directory file and limits. File only (no flags or variables).
    pub services: spine_actors::services::ServicesConfig,
}

/// Where the metrics endpoint listens by default (loopback only).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9701";

/// `[metrics]`: the Prometheus scrape endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// Socket address `IP:PORT` of the endpoint. Kept as text so that a bad
    /// value is reported by validation with where it came from.
    pub listen: String,
    /// Allow a non-loopback `listen` address. The endpoint has no
    /// authentication, so exposing it beyond the host must be deliberate.
    pub allow_remote: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: DEFAULT_METRICS_LISTEN.to_string(),
            allow_remote: false,
        }
    }
}

impl MetricsConfig {
    /// The listen address; `None` if it does not parse (validation reports
    /// that before anything runs).
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen.parse().ok()
    }
}

/// `[directory]`: the mailbox directory source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    /// mesh-sandbox `mailboxes.jsonl` (needs `workflows`).
    pub mailboxes: Option<PathBuf>,
    /// mesh-sandbox `workflows.jsonl` (needs `mailboxes`).
    pub workflows: Option<PathBuf>,
    /// Native TOML directory file.
    pub toml: Option<PathBuf>,
    /// PBKDF2 iterations for plaintext passwords in the directory files.
    pub hash_iterations: u32,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            mailboxes: None,
            workflows: None,
            toml: None,
            hash_iterations: DEFAULT_HASH_ITERATIONS,
        }
    }
}

/// `[log]`: diagnostics to stderr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// A `tracing` filter: a level (`info`) or directives (`info,spine=debug`).
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The effective configuration and where each value came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The merged settings.
    pub config: NodeConfig,
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    origins: BTreeMap<Setting, Origin>,
}

impl Loaded {
    /// Where `setting`'s value came from.
    pub fn origin(&self, setting: Setting) -> Origin {
        self.origins
            .get(&setting)
            .cloned()
            .unwrap_or(Origin::Default)
    }

    /// Checks the merged settings; lists every problem at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::validate(self)
    }

    /// The effective configuration as TOML, each value annotated with its
    /// origin; the output is itself a valid config file.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        print::render(self)
    }

    /// Applies one layer's values (already known to be non-empty).
    fn apply_layer(
        &mut self,
        values: &[(Setting, OsString)],
        origin_of: impl Fn(Setting) -> Origin,
    ) -> Result<(), ConfigError> {
        let names = |s: Setting| values.iter().any(|(x, _)| *x == s);
        let names_jsonl = names(Setting::Mailboxes) || names(Setting::Workflows);
        let names_toml = names(Setting::DirectoryToml);
        if names_toml && !names_jsonl {
            self.clear(Setting::Mailboxes);
            self.clear(Setting::Workflows);
        }
        if names_jsonl && !names_toml {
            self.clear(Setting::DirectoryToml);
        }
        for (setting, raw) in values {
            let origin = origin_of(*setting);
            setting
                .apply(&mut self.config, raw)
                .map_err(|expected| ConfigError::Unparsable {
                    origin: origin.clone(),
                    value: if setting.is_secret() {
                        format!("<redacted: {} bytes>", raw.len())
                    } else {
                        raw.to_string_lossy().into_owned()
                    },
                    expected,
                })?;
            self.origins.insert(*setting, origin);
        }
        Ok(())
    }

    fn clear(&mut self, setting: Setting) {
        let dir = &mut self.config.directory;
        match setting {
            Setting::Mailboxes => dir.mailboxes = None,
            Setting::Workflows => dir.workflows = None,
            Setting::DirectoryToml => dir.toml = None,
            _ => return,
        }
        self.origins.remove(&setting);
    }
}

/// Reads an environment variable; injected so tests never touch the
/// process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// The process environment.
pub fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// Merges defaults, the config file, the environment and the flags.
///
/// `config_flag` is `--config`; `flags` are the setting flags given on the
/// command line. Does not validate: call [`Loaded::validate`].
pub fn resolve(
    config_flag: Option<&OsStr>,
    flags: &[(Setting, OsString)],
    env: EnvLookup<'_>,
) -> Result<Loaded, ConfigError> {
    let mut loaded = Loaded {
        config: NodeConfig::default(),
        file: None,
        origins: BTreeMap::new(),
    };
    let config_path = config_flag
        .map(OsStr::to_os_string)
        .or_else(|| env(CONFIG_ENV).filter(|v| !v.is_empty()));
    if let Some(path) = config_path {
        let path = PathBuf::from(path);
        let parsed = file::load(&path)?;
        loaded.config = parsed.config;
        for setting in parsed.present {
            loaded.origins.insert(setting, Origin::File(path.clone()));
        }
        loaded.file = Some(path);
    }
    let from_env: Vec<(Setting, OsString)> = Setting::ALL
        .iter()
        .filter_map(|s| env(s.env()).filter(|v| !v.is_empty()).map(|v| (*s, v)))
        .collect();
    loaded.apply_layer(&from_env, |s| Origin::Env(s.env()))?;
    loaded.apply_layer(flags, |s| Origin::Flag(s.flag()))?;
    Ok(loaded)
}
