//! Precedence and validation of the merged configuration. The environment
//! is injected (a map), so these tests never touch the process's own.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::CommandFactory;
use spine_core::ErrorCode;

use super::error::Problem;
use super::*;
use crate::cli::Cli;

/// A fake environment.
#[derive(Default)]
struct Env(BTreeMap<String, OsString>);

impl Env {
    fn with(mut self, name: &str, value: impl Into<OsString>) -> Env {
        self.0.insert(name.to_string(), value.into());
        self
    }

    fn lookup(&self) -> impl Fn(&str) -> Option<OsString> + '_ {
        move |name| self.0.get(name).cloned()
    }
}

fn flags(pairs: &[(Setting, &str)]) -> Vec<(Setting, OsString)> {
    pairs.iter().map(|(s, v)| (*s, OsString::from(v))).collect()
}

fn resolve_with(
    config: Option<&Path>,
    flag_values: &[(Setting, &str)],
    env: &Env,
) -> Result<Loaded, ConfigError> {
    let lookup = env.lookup();
    resolve(config.map(Path::as_os_str), &flags(flag_values), &lookup)
}

fn write_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("spine.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn problems(e: ConfigError) -> Vec<Problem> {
    match e {
        ConfigError::Invalid { problems } => problems,
        other => panic!("expected Invalid, got {other}"),
    }
}

#[test]
fn nothing_given_means_defaults() {
    let loaded = resolve_with(None, &[], &Env::default()).unwrap();
    assert_eq!(loaded.config, NodeConfig::default());
    assert!(loaded.file.is_none());
    for s in Setting::ALL {
        assert_eq!(loaded.origin(s), Origin::Default, "{s:?}");
    }
    loaded.validate().unwrap();
}

#[test]
fn file_then_env_then_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(
        tmp.path(),
        "[storage]\nsegment_bytes = 8192\nmax_in_flight = 7\n[log]\nlevel = \"warn\"\n",
    );
    let env = Env::default()
        .with("SPINE_SEGMENT_BYTES", "16384")
        .with("SPINE_LOG_LEVEL", "debug");

    // File only.
    let l = resolve_with(Some(&file), &[], &Env::default()).unwrap();
    assert_eq!(l.config.storage.segment_bytes, 8192);
    assert_eq!(l.origin(Setting::SegmentBytes), Origin::File(file.clone()));
    assert_eq!(l.origin(Setting::MaxRecordBytes), Origin::Default);

    // Env over file; file still supplies what env does not.
    let l = resolve_with(Some(&file), &[], &env).unwrap();
    assert_eq!(l.config.storage.segment_bytes, 16384);
    assert_eq!(
        l.origin(Setting::SegmentBytes),
        Origin::Env("SPINE_SEGMENT_BYTES")
    );
    assert_eq!(l.config.storage.max_in_flight, 7);
    assert_eq!(l.config.log.level, "debug");

    // Flag over env.
    let l = resolve_with(Some(&file), &[(Setting::SegmentBytes, "32768")], &env).unwrap();
    assert_eq!(l.config.storage.segment_bytes, 32768);
    assert_eq!(
        l.origin(Setting::SegmentBytes),
        Origin::Flag("--segment-bytes")
    );
    assert_eq!(l.config.log.level, "debug");
    assert_eq!(l.config.storage.max_in_flight, 7);
    l.validate().unwrap();
}

#[test]
fn every_setting_is_reachable_from_env_and_flag() {
    let sample = |s: Setting| match s {
        Setting::DataDir
        | Setting::Mailboxes
        | Setting::Workflows
        | Setting::DirectoryToml
        | Setting::ServicesDirectory
        | Setting::TlsCert
        | Setting::TlsKey
        | Setting::ClientCa => "/some/path",
        Setting::LogFormat => "json",
        Setting::LogLevel => "trace",
        Setting::MetricsEnabled
        | Setting::NativeEnabled
        | Setting::QuicEnabled
        | Setting::MeshEnabled => "false",
        Setting::MetricsAllowRemote
        | Setting::HugePages
        | Setting::NetworkAllowRemote
        | Setting::RequireClientCert
        | Setting::MeshAllowPlainHttp
        | Setting::MeshAllowRemote
        | Setting::Sandbox => "true",
        Setting::MetricsListen
        | Setting::NativeListen
        | Setting::QuicListen
        | Setting::MeshListen => "127.0.0.1:4242",
        _ => "4242",
    };
    for setting in Setting::ALL {
        let env = Env::default().with(setting.env(), sample(setting));
        let l = resolve_with(None, &[], &env).unwrap();
        assert_eq!(l.origin(setting), Origin::Env(setting.env()), "{setting:?}");
        assert_ne!(
            l.config,
            NodeConfig::default(),
            "{setting:?} via env changed nothing"
        );
        let l = resolve_with(None, &[(setting, sample(setting))], &Env::default()).unwrap();
        assert_eq!(
            l.origin(setting),
            Origin::Flag(setting.flag()),
            "{setting:?}"
        );
        assert_ne!(
            l.config,
            NodeConfig::default(),
            "{setting:?} via flag changed nothing"
        );
    }
}

#[test]
fn empty_env_var_counts_as_unset() {
    let env = Env::default()
        .with("SPINE_DATA_DIR", "")
        .with("SPINE_CONFIG", "");
    let l = resolve_with(None, &[], &env).unwrap();
    assert_eq!(l.config, NodeConfig::default());
    assert!(l.file.is_none());
}

#[test]
fn config_flag_beats_config_env() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.toml");
    let b = tmp.path().join("b.toml");
    std::fs::write(&a, "[storage]\nmax_in_flight = 1\n").unwrap();
    std::fs::write(&b, "[storage]\nmax_in_flight = 2\n").unwrap();
    let env = Env::default().with("SPINE_CONFIG", a.as_os_str());
    let l = resolve_with(None, &[], &env).unwrap();
    assert_eq!(l.config.storage.max_in_flight, 1);
    assert_eq!(l.file.as_deref(), Some(a.as_path()));
    let l = resolve_with(Some(&b), &[], &env).unwrap();
    assert_eq!(l.config.storage.max_in_flight, 2);
}

#[test]
fn missing_or_bad_config_file_is_an_error() {
    let e = resolve_with(
        Some(Path::new("/nonexistent/spine.toml")),
        &[],
        &Env::default(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "CONFIG_FILE_UNREADABLE");
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "[storage]\n\n\nbogus = 1\n");
    let e = resolve_with(Some(&file), &[], &Env::default()).unwrap_err();
    assert_eq!(e.code(), "CONFIG_FILE_INVALID");
    let text = e.to_string();
    assert!(text.contains("bogus") && text.contains("line 4"), "{text}");
}

#[test]
fn unparsable_values_name_their_source() {
    let env = Env::default().with("SPINE_MAX_IN_FLIGHT", "lots");
    let e = resolve_with(None, &[], &env).unwrap_err();
    assert_eq!(e.code(), "CONFIG_VALUE_UNPARSABLE");
    let text = e.to_string();
    assert!(text.contains("SPINE_MAX_IN_FLIGHT"), "{text}");
    assert!(text.contains("\"lots\""), "{text}");
    assert!(text.contains("whole number"), "{text}");

    let e = resolve_with(None, &[(Setting::InboxExpiry, "5d")], &Env::default()).unwrap_err();
    assert!(e.to_string().contains("--inbox-expiry-secs"), "{e}");
    assert!(e.to_string().contains("seconds"), "{e}");
}

#[test]
fn higher_layer_directory_form_replaces_lower() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "[directory]\ntoml = \"/etc/dir.toml\"\n");
    let l = resolve_with(
        Some(&file),
        &[
            (Setting::Mailboxes, "/m.jsonl"),
            (Setting::Workflows, "/w.jsonl"),
        ],
        &Env::default(),
    )
    .unwrap();
    assert_eq!(l.config.directory.toml, None);
    assert_eq!(l.origin(Setting::DirectoryToml), Origin::Default);
    assert_eq!(
        l.config.directory.mailboxes,
        Some(PathBuf::from("/m.jsonl"))
    );
    l.validate().unwrap();

    let file = write_file(
        tmp.path(),
        "[directory]\nmailboxes = \"/m\"\nworkflows = \"/w\"\n",
    );
    let env = Env::default().with("SPINE_DIRECTORY_TOML", "/d.toml");
    let l = resolve_with(Some(&file), &[], &env).unwrap();
    assert_eq!(l.config.directory.mailboxes, None);
    assert_eq!(l.config.directory.workflows, None);
    assert_eq!(l.config.directory.toml, Some(PathBuf::from("/d.toml")));
    l.validate().unwrap();

    // A JSONL path from a higher layer merges with its pair from a lower one.
    let env = Env::default().with("SPINE_MAILBOXES", "/env-m");
    let l = resolve_with(Some(&file), &[], &env).unwrap();
    assert_eq!(l.config.directory.mailboxes, Some(PathBuf::from("/env-m")));
    assert_eq!(l.config.directory.workflows, Some(PathBuf::from("/w")));
    l.validate().unwrap();
}

#[test]
fn both_directory_forms_in_one_layer_conflict() {
    let l = resolve_with(
        None,
        &[
            (Setting::DirectoryToml, "/d.toml"),
            (Setting::Mailboxes, "/m"),
            (Setting::Workflows, "/w"),
        ],
        &Env::default(),
    )
    .unwrap();
    let p = problems(l.validate().unwrap_err());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::DirectoryToml);
    let text = p[0].to_string();
    assert!(
        text.contains("flag --directory") && text.contains("flag --mailboxes"),
        "{text}"
    );
    assert!(text.contains("not both"), "{text}");

    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(
        tmp.path(),
        "[directory]\ntoml = \"/d\"\nworkflows = \"/w\"\nmailboxes = \"/m\"\n",
    );
    let l = resolve_with(Some(&file), &[], &Env::default()).unwrap();
    let text = l.validate().unwrap_err().to_string();
    assert!(text.contains("config file"), "{text}");
}

#[test]
fn jsonl_files_must_come_together() {
    let l = resolve_with(None, &[(Setting::Mailboxes, "/m")], &Env::default()).unwrap();
    let p = problems(l.validate().unwrap_err());
    assert_eq!(p[0].setting, Setting::Mailboxes);
    assert!(p[0].message.contains("--workflows"), "{}", p[0]);
    let env = Env::default().with("SPINE_WORKFLOWS", "/w");
    let l = resolve_with(None, &[], &env).unwrap();
    let p = problems(l.validate().unwrap_err());
    assert_eq!(p[0].setting, Setting::Workflows);
    assert!(p[0].to_string().contains("SPINE_WORKFLOWS"), "{}", p[0]);
}

#[test]
fn out_of_range_values_are_all_reported_with_origins() {
    let env = Env::default().with("SPINE_MAX_BATCH_RECORDS", "0");
    let l = resolve_with(
        None,
        &[
            (Setting::SegmentBytes, "100"),
            (Setting::MaxRecordBytes, "0"),
            (Setting::MaxBatchBytes, "0"),
            (Setting::MaxInFlight, "0"),
            (Setting::HashIterations, "0"),
        ],
        &env,
    )
    .unwrap();
    let e = l.validate().unwrap_err();
    assert_eq!(e.code(), "CONFIG_INVALID");
    let p = problems(e);
    let settings: Vec<Setting> = p.iter().map(|p| p.setting).collect();
    assert_eq!(
        settings,
        vec![
            Setting::SegmentBytes,
            Setting::MaxRecordBytes,
            Setting::MaxBatchRecords,
            Setting::MaxBatchBytes,
            Setting::MaxInFlight,
            Setting::HashIterations,
        ]
    );
    let seg = p[0].to_string();
    assert!(seg.contains("storage.segment_bytes = 100"), "{seg}");
    assert!(seg.contains("flag --segment-bytes"), "{seg}");
    assert!(seg.contains("between 4096 and"), "{seg}");
    assert!(p[2]
        .to_string()
        .contains("environment variable SPINE_MAX_BATCH_RECORDS"));
}

#[test]
fn upper_bounds_hold() {
    for (setting, value) in [
        (Setting::SegmentBytes, "4294967297"),
        (Setting::MaxRecordBytes, "1073741825"),
        (Setting::MaxBatchRecords, "1048577"),
        (Setting::MaxInFlight, "16777217"),
        (Setting::InboxExpiry, "315360001"),
        (Setting::MaxMessages, "1073741825"),
        (Setting::MaxInboxDepth, "1073741825"),
        (Setting::HashIterations, "10000001"),
    ] {
        let l = resolve_with(None, &[(setting, value)], &Env::default()).unwrap();
        let p = problems(l.validate().unwrap_err());
        assert!(p.iter().any(|p| p.setting == setting), "{setting:?}: {p:?}");
    }
    let l = resolve_with(
        None,
        &[
            (Setting::SegmentBytes, "4294967296"),
            (Setting::MaxInFlight, "16777216"),
            (Setting::MaxMessages, "1073741824"),
            (Setting::MaxInboxDepth, "1073741824"),
        ],
        &Env::default(),
    )
    .unwrap();
    l.validate().unwrap();
}

#[test]
fn store_limits_layer_print_and_are_checked_with_origins() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(
        tmp.path(),
        "[storage]\nmax_messages = 1000\nmax_inbox_depth = 10\n",
    );
    // File only.
    let l = resolve_with(Some(&file), &[], &Env::default()).unwrap();
    assert_eq!(
        (
            l.config.storage.max_messages,
            l.config.storage.max_inbox_depth
        ),
        (1000, 10)
    );
    assert_eq!(l.origin(Setting::MaxMessages), Origin::File(file.clone()));
    l.validate().unwrap();
    assert_eq!(l.config.storage.store().max_inbox_depth, 10);
    // Env over file, flag over env.
    let env = Env::default()
        .with("SPINE_MAX_MESSAGES", "2000")
        .with("SPINE_MAX_INBOX_DEPTH", "20");
    let l = resolve_with(Some(&file), &[(Setting::MaxInboxDepth, "30")], &env).unwrap();
    assert_eq!(l.config.storage.max_messages, 2000);
    assert_eq!(
        l.origin(Setting::MaxMessages),
        Origin::Env("SPINE_MAX_MESSAGES")
    );
    assert_eq!(l.config.storage.max_inbox_depth, 30);
    assert_eq!(
        l.origin(Setting::MaxInboxDepth),
        Origin::Flag("--max-inbox-depth")
    );
    l.validate().unwrap();
    let text = l.to_toml().unwrap();
    for line in [
        "max_messages = 2000  # environment variable SPINE_MAX_MESSAGES",
        "max_inbox_depth = 30  # flag --max-inbox-depth",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    let reparsed = super::file::parse(Path::new("printed"), &text).unwrap();
    assert_eq!(reparsed.config, l.config);
    let defaults = resolve_with(None, &[], &Env::default())
        .unwrap()
        .to_toml()
        .unwrap();
    assert!(
        defaults.contains("max_messages = 50000000  # built-in default")
            && defaults.contains("max_inbox_depth = 5000000  # built-in default"),
        "{defaults}"
    );

    // Out of range: each reported with its origin.
    let env = Env::default().with("SPINE_MAX_INBOX_DEPTH", "0");
    let p = problems(
        resolve_with(None, &[(Setting::MaxMessages, "0")], &env)
            .unwrap()
            .validate()
            .unwrap_err(),
    );
    let settings: Vec<Setting> = p.iter().map(|p| p.setting).collect();
    assert_eq!(
        settings,
        vec![Setting::MaxMessages, Setting::MaxInboxDepth],
        "{p:?}"
    );
    assert_eq!(
        p[0].to_string(),
        "storage.max_messages = 0 (from flag --max-messages): must be between 1 and 1073741824 messages"
    );
    assert_eq!(
        p[1].to_string(),
        "storage.max_inbox_depth = 0 (from environment variable SPINE_MAX_INBOX_DEPTH): must be between 1 and 1073741824 messages"
    );
    // A bad store limit alone is reported once, not again for the depth.
    let p = problems(
        resolve_with(
            None,
            &[(Setting::MaxMessages, "1073741825")],
            &Env::default(),
        )
        .unwrap()
        .validate()
        .unwrap_err(),
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::MaxMessages);
    // A zero depth is judged against the store limit in force.
    let p = problems(
        resolve_with(
            Some(&file),
            &[(Setting::MaxInboxDepth, "0")],
            &Env::default(),
        )
        .unwrap()
        .validate()
        .unwrap_err(),
    );
    assert_eq!(
        p[0].to_string(),
        "storage.max_inbox_depth = 0 (from flag --max-inbox-depth): must be between 1 and 1000 messages"
    );

    // Deeper than the store: blamed on the depth, naming the store limit,
    // where it came from and how to set it.
    let p = problems(
        resolve_with(
            Some(&file),
            &[(Setting::MaxInboxDepth, "1001")],
            &Env::default(),
        )
        .unwrap()
        .validate()
        .unwrap_err(),
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::MaxInboxDepth);
    let text = p[0].to_string();
    assert!(
        text.starts_with(
            "storage.max_inbox_depth = 1001 (from flag --max-inbox-depth): is larger than storage.max_messages (1000, from config file"
        ) && text.contains("flag --max-messages, env SPINE_MAX_MESSAGES"),
        "{text}"
    );
    // Lowering the store limit below the default depth is the same mistake.
    let env = Env::default().with("SPINE_MAX_MESSAGES", "100");
    let p = problems(
        resolve_with(None, &[], &env)
            .unwrap()
            .validate()
            .unwrap_err(),
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::MaxInboxDepth);
    assert!(
        p[0].to_string().starts_with(
            "storage.max_inbox_depth = 5000000 (from built-in default): is larger than storage.max_messages (100, from environment variable SPINE_MAX_MESSAGES"
        ),
        "{}",
        p[0]
    );
    // Equal is fine, at either end.
    for (messages, depth) in [("1", "1"), ("1073741824", "1073741824")] {
        resolve_with(
            None,
            &[
                (Setting::MaxMessages, messages),
                (Setting::MaxInboxDepth, depth),
            ],
            &Env::default(),
        )
        .unwrap()
        .validate()
        .unwrap();
    }
    // Not a number: refused while parsing, naming the source.
    let e = resolve_with(None, &[(Setting::MaxMessages, "50M")], &Env::default()).unwrap_err();
    assert_eq!(e.code(), "CONFIG_VALUE_UNPARSABLE");
    assert!(
        e.to_string().contains("--max-messages") && e.to_string().contains("a number of messages"),
        "{e}"
    );
}

#[test]
fn retention_rules() {
    let l = resolve_with(None, &[(Setting::InboxExpiry, "0")], &Env::default()).unwrap();
    assert_eq!(
        problems(l.validate().unwrap_err())[0].setting,
        Setting::InboxExpiry
    );

    let l = resolve_with(
        None,
        &[(Setting::InboxExpiry, "600"), (Setting::PurgeAfter, "60")],
        &Env::default(),
    )
    .unwrap();
    let p = problems(l.validate().unwrap_err());
    assert_eq!(p[0].setting, Setting::PurgeAfter);
    assert!(p[0].message.contains("inbox_expiry"), "{}", p[0]);

    let l = resolve_with(
        None,
        &[(Setting::InboxExpiry, "60"), (Setting::PurgeAfter, "60")],
        &Env::default(),
    )
    .unwrap();
    l.validate().unwrap();
    assert_eq!(l.config.storage.purge_after, Duration::from_secs(60));
}

#[test]
fn data_dir_must_not_be_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let env = Env::default().with("SPINE_DATA_DIR", file.as_os_str());
    let l = resolve_with(None, &[], &env).unwrap();
    let p = problems(l.validate().unwrap_err());
    assert_eq!(p[0].setting, Setting::DataDir);
    assert!(p[0].message.contains("not a directory"), "{}", p[0]);

    // Existing directory and not-yet-existing path are both fine.
    for dir in [tmp.path().to_path_buf(), tmp.path().join("new/sub")] {
        let l = resolve_with(
            None,
            &[(Setting::DataDir, dir.to_str().unwrap())],
            &Env::default(),
        )
        .unwrap();
        l.validate().unwrap();
    }
    let l = resolve_with(None, &[(Setting::DataDir, "")], &Env::default()).unwrap();
    assert!(problems(l.validate().unwrap_err())[0]
        .message
        .contains("empty"));
}

#[test]
fn log_level_must_be_a_real_filter() {
    for good in [
        "info",
        "WARN",
        "off",
        "info,spine_actors=debug",
        "spine=trace",
    ] {
        let l = resolve_with(None, &[(Setting::LogLevel, good)], &Env::default()).unwrap();
        l.validate().unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in ["", "inf", "info,verbose", "spine=loud"] {
        let l = resolve_with(None, &[(Setting::LogLevel, bad)], &Env::default()).unwrap();
        let p = problems(l.validate().unwrap_err());
        assert_eq!(p[0].setting, Setting::LogLevel, "{bad}");
    }
}

#[test]
fn print_config_round_trips_and_names_origins() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "[storage]\nmax_in_flight = 9\n");
    let env = Env::default().with("SPINE_LOG_FORMAT", "json");
    let l = resolve_with(
        Some(&file),
        &[
            (Setting::DataDir, "/var/lib/spine \"quoted\""),
            (Setting::DirectoryToml, "/etc/spine/dir.toml"),
        ],
        &env,
    )
    .unwrap();
    let text = l.to_toml().unwrap();
    let reparsed = super::file::parse(Path::new("printed"), &text).unwrap();
    assert_eq!(reparsed.config, l.config, "{text}");
    assert!(text.contains("max_in_flight = 9  # config file"), "{text}");
    assert!(
        text.contains("format = \"json\"  # environment variable SPINE_LOG_FORMAT"),
        "{text}"
    );
    assert!(text.contains("# flag --data-dir"), "{text}");
    assert!(
        text.contains("inbox_expiry = 432000  # seconds; built-in default"),
        "{text}"
    );
    assert!(text.contains("# mailboxes is not set"), "{text}");
}

#[test]
fn every_model_field_has_a_setting() {
    let table = toml::Table::try_from(NodeConfig {
        directory: DirectoryConfig {
            mailboxes: Some("/m".into()),
            workflows: Some("/w".into()),
            toml: Some("/t".into()),
            ..DirectoryConfig::default()
        },
        network: NetworkConfig {
            tls_cert: Some("/c".into()),
            tls_key: Some("/k".into()),
            client_ca: Some("/ca".into()),
            ..NetworkConfig::default()
        },
        services: spine_actors::services::ServicesConfig {
            directory: Some("/s".into()),
            ..Default::default()
        },
        ..NodeConfig::default()
    })
    .unwrap();
    let keys: Vec<String> = table
        .iter()
        .flat_map(|(section, v)| {
            v.as_table()
                .unwrap()
                .keys()
                .map(move |k| format!("{section}.{k}"))
        })
        .collect();
    let mut known: Vec<&str> = Setting::ALL.iter().map(|s| s.key()).collect();
    known.sort_unstable();
    let mut keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, known, "add new fields to config::settings::Setting");
}

#[test]
fn help_defaults_match_the_model() {
    let text = resolve_with(None, &[], &Env::default())
        .unwrap()
        .to_toml()
        .unwrap();
    let cmd = Cli::command();
    let serve = cmd.find_subcommand("serve").unwrap();
    for setting in Setting::ALL {
        // Field names repeat across sections (max_in_flight, allow_remote):
        // look only inside the setting's own section.
        let (section, field) = setting.section_and_field();
        let Some(value) = text
            .lines()
            .skip_while(|l| *l != format!("[{section}]"))
            .skip(1)
            .take_while(|l| !l.starts_with('['))
            .find_map(|l| l.strip_prefix(&format!("{field} = ")))
            .and_then(|rest| rest.split("  #").next())
        else {
            continue; // unset by default: no [default: ...] in the help
        };
        let value = value.trim_matches('"');
        let long = setting.flag().trim_start_matches("--");
        let help = serve
            .get_arguments()
            .find(|a| a.get_long() == Some(long))
            .and_then(|a| a.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(
            help.contains(&format!("[default: {value}]")),
            "{}: help says {help:?}, model default is {value}",
            setting.flag()
        );
    }
}

#[test]
fn non_utf8_config_path_is_read_as_bytes() {
    // The config path is an OsStr all the way through.
    let e = resolve(Some(OsStr::new("/nonexistent/\u{e9}.toml")), &[], &|_| None).unwrap_err();
    assert!(e.to_string().contains(".toml"));
}

#[test]
fn runtime_settings_layer_and_are_checked_by_the_runtime_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(
        tmp.path(),
        "[runtime]\npartitions = 2\nmax_restarts = 7\nexpiry_interval_ms = 500\n",
    );
    let env = Env::default().with("SPINE_PARTITIONS", "3");
    let l = resolve_with(Some(&file), &[(Setting::MaxRestarts, "9")], &env).unwrap();
    assert_eq!(l.config.runtime.partitions, 3);
    assert_eq!(
        l.origin(Setting::Partitions),
        Origin::Env("SPINE_PARTITIONS")
    );
    assert_eq!(l.config.runtime.max_restarts, 9);
    assert_eq!(
        l.origin(Setting::MaxRestarts),
        Origin::Flag("--max-restarts")
    );
    assert_eq!(l.config.runtime.expiry_interval_ms, 500);
    assert_eq!(l.origin(Setting::ExpiryIntervalMs), Origin::File(file));
    l.validate().unwrap();

    // Every bad value is reported, each with its setting and origin.
    let env = Env::default().with("SPINE_MAX_INBOX_PAGE", "5");
    let l = resolve_with(
        None,
        &[
            (Setting::Partitions, "0"),
            (Setting::ExpiryIntervalMs, "1"),
            (Setting::ShutdownDrainMs, "600001"),
        ],
        &env,
    )
    .unwrap();
    let p = problems(l.validate().unwrap_err());
    let settings: Vec<Setting> = p.iter().map(|p| p.setting).collect();
    assert_eq!(
        settings,
        vec![
            Setting::Partitions,
            Setting::ExpiryIntervalMs,
            Setting::MaxInboxPage,
            Setting::ShutdownDrainMs,
        ]
    );
    let text = p[0].to_string();
    assert!(
        text.starts_with("runtime.partitions = 0 (from flag --partitions): must be 1 to 4096"),
        "{text}"
    );
    assert!(
        p[2].to_string()
            .contains("environment variable SPINE_MAX_INBOX_PAGE"),
        "{}",
        p[2]
    );
}

#[test]
fn metrics_listen_must_be_a_loopback_socket_address_unless_allowed() {
    let check = |flag_values: &[(Setting, &str)], env: &Env| {
        resolve_with(None, flag_values, env).unwrap().validate()
    };
    for good in ["127.0.0.1:9701", "[::1]:9701", "127.1.2.3:80"] {
        check(&[(Setting::MetricsListen, good)], &Env::default())
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for (bad, says) in [
        ("localhost:9701", "not a socket address"),
        ("127.0.0.1", "not a socket address"),
        (" 127.0.0.1:9701", "not a socket address"),
        ("127.0.0.1:0", "port 0"),
        ("0.0.0.0:9701", "not a loopback address"),
        ("10.1.2.3:9701", "not a loopback address"),
        ("[::]:9701", "not a loopback address"),
    ] {
        let p = problems(check(&[(Setting::MetricsListen, bad)], &Env::default()).unwrap_err());
        assert_eq!(p.len(), 1, "{bad}: {p:?}");
        assert_eq!(p[0].setting, Setting::MetricsListen);
        let text = p[0].to_string();
        assert!(text.contains(says), "{bad}: {text}");
        assert!(text.contains("flag --metrics-listen"), "{bad}: {text}");
    }
    let refused =
        problems(check(&[(Setting::MetricsListen, "0.0.0.0:9701")], &Env::default()).unwrap_err());
    let text = refused[0].to_string();
    assert!(
        text.contains("--metrics-allow-remote") && text.contains("allow_remote = true"),
        "says how to allow it: {text}"
    );

    // Allowed by flag or environment; or irrelevant when metrics are off.
    check(
        &[
            (Setting::MetricsListen, "0.0.0.0:9701"),
            (Setting::MetricsAllowRemote, "true"),
        ],
        &Env::default(),
    )
    .unwrap();
    let env = Env::default()
        .with("SPINE_METRICS_LISTEN", "10.1.2.3:9701")
        .with("SPINE_METRICS_ALLOW_REMOTE", "true");
    check(&[], &env).unwrap();
    let env = Env::default().with("SPINE_METRICS_LISTEN", "10.1.2.3:9701");
    check(&[(Setting::MetricsEnabled, "false")], &env).unwrap();
    // A flag can take the permission back.
    let env = Env::default()
        .with("SPINE_METRICS_LISTEN", "10.1.2.3:9701")
        .with("SPINE_METRICS_ALLOW_REMOTE", "true");
    let p = problems(check(&[(Setting::MetricsAllowRemote, "false")], &env).unwrap_err());
    assert!(
        p[0].to_string().contains("flag --metrics-allow-remote"),
        "{}",
        p[0]
    );
    // Even disabled, the address must still parse.
    let p = problems(
        check(
            &[
                (Setting::MetricsEnabled, "false"),
                (Setting::MetricsListen, "nowhere"),
            ],
            &Env::default(),
        )
        .unwrap_err(),
    );
    assert_eq!(p[0].setting, Setting::MetricsListen);
}

#[test]
fn print_config_shows_runtime_and_metrics_sections() {
    let env = Env::default().with("SPINE_METRICS_LISTEN", "127.0.0.1:9999");
    let l = resolve_with(None, &[(Setting::Partitions, "4")], &env).unwrap();
    let text = l.to_toml().unwrap();
    let runtime = text.find("[runtime]").unwrap();
    let metrics = text.find("[metrics]").unwrap();
    let log = text.find("[log]").unwrap();
    assert!(runtime < metrics && metrics < log, "{text}");
    assert!(
        text.contains("partitions = 4  # flag --partitions"),
        "{text}"
    );
    assert!(
        text.contains("listen = \"127.0.0.1:9999\"  # environment variable SPINE_METRICS_LISTEN"),
        "{text}"
    );
    assert!(
        text.contains("enabled = true  # built-in default"),
        "{text}"
    );
    assert!(
        text.contains("allow_remote = false  # built-in default"),
        "{text}"
    );
    let reparsed = super::file::parse(Path::new("printed"), &text).unwrap();
    assert_eq!(reparsed.config, l.config);
}

#[test]
fn unknown_keys_in_runtime_and_metrics_are_named() {
    for text in [
        "[runtime]\npartitons = 2\n",
        "[metrics]\nlisten = \"127.0.0.1:1\"\naddress = \"x\"\n",
    ] {
        let e = super::file::parse(Path::new("f.toml"), text).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.contains("partitons") || shown.contains("address"),
            "{shown}"
        );
    }
}

#[test]
fn network_settings_layer_and_print_with_origins() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(
        tmp.path(),
        "[network]\nnative_listen = \"127.0.0.1:7000\"\nmax_in_flight = 64\nserver_name = \"from-file\"\n",
    );
    let env = Env::default()
        .with("SPINE_MAX_IN_FLIGHT_PER_CONNECTION", "128")
        .with("SPINE_QUIC_ENABLED", "false");
    let l = resolve_with(
        Some(&file),
        &[
            (Setting::ServerName, "from-flag"),
            (Setting::MaxInFlight, "9"),
        ],
        &env,
    )
    .unwrap();
    let n = &l.config.network;
    assert_eq!(n.native_listen, "127.0.0.1:7000");
    assert_eq!(l.origin(Setting::NativeListen), Origin::File(file.clone()));
    assert_eq!(n.max_in_flight, 128);
    assert_eq!(
        l.origin(Setting::MaxInFlightPerConnection),
        Origin::Env("SPINE_MAX_IN_FLIGHT_PER_CONNECTION")
    );
    assert!(!n.quic_enabled);
    assert_eq!(n.server_name, "from-flag");
    assert_eq!(l.origin(Setting::ServerName), Origin::Flag("--server-name"));
    // --max-in-flight is storage's, not the connection's.
    assert_eq!(l.config.storage.max_in_flight, 9);
    l.validate().unwrap();

    let text = l.to_toml().unwrap();
    let metrics = text.find("[metrics]").unwrap();
    let network = text.find("[network]").unwrap();
    let log = text.find("[log]").unwrap();
    assert!(metrics < network && network < log, "{text}");
    let section = &text[network..log];
    for line in [
        "native_enabled = true  # built-in default",
        "native_listen = \"127.0.0.1:7000\"  # config file",
        "quic_enabled = false  # environment variable SPINE_QUIC_ENABLED",
        "quic_listen = \"127.0.0.1:7702\"  # built-in default",
        "allow_remote = false  # built-in default",
        "# tls_cert is not set (env SPINE_TLS_CERT, flag --tls-cert)",
        "# tls_key is not set (env SPINE_TLS_KEY, flag --tls-key)",
        "# client_ca is not set (env SPINE_CLIENT_CA, flag --client-ca)",
        "require_client_cert = false  # built-in default",
        "max_connections = 10000  # built-in default",
        "max_in_flight = 128  # environment variable SPINE_MAX_IN_FLIGHT_PER_CONNECTION",
        "max_payload_bytes = 16777216  # built-in default",
        "download_piece_bytes = 262144  # built-in default",
        "handshake_timeout_ms = 10000  # built-in default",
        "max_connection_buffered_bytes = 67108864  # built-in default",
        "push_inline_bytes = 65536  # built-in default",
        "server_name = \"from-flag\"  # flag --server-name",
    ] {
        assert!(section.contains(line), "{line:?} missing:\n{section}");
    }
    let reparsed = super::file::parse(Path::new("printed"), &text).unwrap();
    assert_eq!(reparsed.config, l.config);
    // Printed TLS paths round-trip too.
    let l = resolve_with(
        None,
        &[
            (Setting::TlsCert, "/etc/spine/cert.pem"),
            (Setting::TlsKey, "/etc/spine/key.pem"),
        ],
        &Env::default(),
    )
    .unwrap();
    let text = l.to_toml().unwrap();
    assert!(
        text.contains("tls_cert = \"/etc/spine/cert.pem\"  # flag --tls-cert"),
        "{text}"
    );
    let reparsed = super::file::parse(Path::new("printed"), &text).unwrap();
    assert_eq!(reparsed.config, l.config);
}

#[test]
fn network_values_are_checked_by_the_transport_rules_with_origins() {
    let check = |flag_values: &[(Setting, &str)], env: &Env| {
        resolve_with(None, flag_values, env).unwrap().validate()
    };
    // Every problem reported, each blamed on its setting and origin.
    let env = Env::default().with("SPINE_HANDSHAKE_TIMEOUT_MS", "5");
    let p = problems(
        check(
            &[
                (Setting::NativeListen, "nowhere"),
                (Setting::MaxConnections, "0"),
                (Setting::MaxInFlightPerConnection, "65537"),
            ],
            &env,
        )
        .unwrap_err(),
    );
    let settings: Vec<Setting> = p.iter().map(|p| p.setting).collect();
    assert_eq!(
        settings,
        vec![
            Setting::NativeListen,
            Setting::MaxConnections,
            Setting::MaxInFlightPerConnection,
            Setting::HandshakeTimeoutMs,
        ],
        "{p:?}"
    );
    let text = p[0].to_string();
    assert!(
        text.starts_with("network.native_listen = \"nowhere\" (from flag --native-listen):")
            && text.contains("IP:PORT"),
        "{text}"
    );
    assert_eq!(
        p[1].to_string(),
        "network.max_connections = 0 (from flag --max-connections): must be 1 to 1000000"
    );
    assert!(
        p[2].to_string().starts_with(
            "network.max_in_flight = 65537 (from flag --max-in-flight-per-connection): must be 1 to 65536"
        ),
        "{}",
        p[2]
    );
    assert!(
        p[3].to_string()
            .contains("environment variable SPINE_HANDSHAKE_TIMEOUT_MS"),
        "{}",
        p[3]
    );

    // A remote address is refused with how to allow it, and accepted once
    // allowed; the permission is not blamed for the address.
    let p = problems(check(&[(Setting::QuicListen, "0.0.0.0:7702")], &Env::default()).unwrap_err());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::QuicListen);
    let text = p[0].to_string();
    assert!(
        text.contains("not a loopback address")
            && text.contains("network.allow_remote is false (from built-in default")
            && text.contains("--network-allow-remote")
            && text.contains("SPINE_NETWORK_ALLOW_REMOTE"),
        "{text}"
    );
    check(
        &[
            (Setting::QuicListen, "0.0.0.0:7702"),
            (Setting::NativeListen, "[::]:7701"),
            (Setting::NetworkAllowRemote, "true"),
        ],
        &Env::default(),
    )
    .unwrap();
    // A disabled listener's address is not looked at.
    check(
        &[
            (Setting::QuicEnabled, "false"),
            (Setting::QuicListen, "0.0.0.0:7702"),
        ],
        &Env::default(),
    )
    .unwrap();
    // Both listeners remote: both reported.
    let env = Env::default().with("SPINE_NATIVE_LISTEN", "10.0.0.1:7701");
    let p = problems(check(&[(Setting::QuicListen, "10.0.0.1:7702")], &env).unwrap_err());
    let settings: Vec<Setting> = p.iter().map(|p| p.setting).collect();
    assert_eq!(settings, vec![Setting::NativeListen, Setting::QuicListen]);
    assert!(
        p[0].to_string()
            .contains("(from environment variable SPINE_NATIVE_LISTEN)"),
        "{}",
        p[0]
    );

    // TLS material: the pair is fine, half of it is not.
    check(
        &[
            (Setting::TlsCert, "/c.pem"),
            (Setting::TlsKey, "/k.pem"),
            (Setting::ClientCa, "/ca.pem"),
            (Setting::RequireClientCert, "true"),
        ],
        &Env::default(),
    )
    .unwrap();
    let env = Env::default().with("SPINE_TLS_KEY", "/k.pem");
    let p = problems(check(&[], &env).unwrap_err());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::TlsKey);
    assert!(
        p[0].to_string()
            .contains("(from environment variable SPINE_TLS_KEY)")
            && p[0].message.contains("together")
            && p[0].message.contains("network.tls_cert is not set"),
        "{}",
        p[0]
    );
    let p = problems(check(&[(Setting::RequireClientCert, "true")], &Env::default()).unwrap_err());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::RequireClientCert);
    assert!(
        p[0].message.contains("--client-ca"),
        "says how to set the CA: {}",
        p[0]
    );
    let p = problems(check(&[(Setting::ClientCa, "/ca.pem")], &Env::default()).unwrap_err());
    assert_eq!(p[0].setting, Setting::ClientCa);
    let p = problems(
        check(
            &[(Setting::TlsCert, ""), (Setting::TlsKey, "/k.pem")],
            &Env::default(),
        )
        .unwrap_err(),
    );
    assert_eq!(p[0].setting, Setting::TlsCert);
    assert!(p[0].message.contains("empty"), "{}", p[0]);

    // A piece larger than the payload limit: blamed on the piece size,
    // naming the limit it is measured against.
    let p = problems(
        check(
            &[
                (Setting::MaxPayloadBytes, "65536"),
                (Setting::DownloadPieceBytes, "131072"),
            ],
            &Env::default(),
        )
        .unwrap_err(),
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::DownloadPieceBytes);
    assert!(
        p[0].message
            .contains("network.max_payload_bytes is 65536 (from flag --max-payload-bytes"),
        "{}",
        p[0]
    );
    check(
        &[
            (Setting::MaxPayloadBytes, "67108864"),
            (Setting::DownloadPieceBytes, "33554432"),
        ],
        &Env::default(),
    )
    .unwrap();
    let p = problems(check(&[(Setting::ServerName, "")], &Env::default()).unwrap_err());
    assert_eq!(p[0].setting, Setting::ServerName);
}

#[test]
fn unknown_keys_in_network_are_named() {
    let e = super::file::parse(
        Path::new("f.toml"),
        "[network]\nnative_listen = \"127.0.0.1:1\"\n\nmax_inflight = 3\n",
    )
    .unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("max_inflight") && shown.contains("line 4"),
        "{shown}"
    );
}

#[test]
fn mesh_settings_layer_and_print_with_origins() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(
        tmp.path(),
        "[mesh]\nlisten = \"127.0.0.1:8000\"\nmax_connections = 64\ntoken_window_secs = 600\n",
    );
    let env = Env::default()
        .with("SPINE_MESH_MAX_CONNECTIONS", "128")
        .with("SPINE_SANDBOX", "true");
    let l = resolve_with(
        Some(&file),
        &[
            (Setting::MeshTokenWindowSecs, "900"),
            (Setting::MaxConnections, "9"),
        ],
        &env,
    )
    .unwrap();
    let m = &l.config.mesh;
    assert_eq!(m.listen, "127.0.0.1:8000");
    assert_eq!(l.origin(Setting::MeshListen), Origin::File(file.clone()));
    assert_eq!(m.max_connections, 128);
    assert_eq!(
        l.origin(Setting::MeshMaxConnections),
        Origin::Env("SPINE_MESH_MAX_CONNECTIONS")
    );
    assert!(m.sandbox);
    assert_eq!(m.token_window_secs, 900);
    assert_eq!(
        l.origin(Setting::MeshTokenWindowSecs),
        Origin::Flag("--mesh-token-window-secs")
    );
    // --max-connections is the native protocol's, not the MESH API's.
    assert_eq!(l.config.network.max_connections, 9);
    l.validate().unwrap();

    let text = l.to_toml().unwrap();
    let network = text.find("[network]").unwrap();
    let mesh = text.find("[mesh]").unwrap();
    let log = text.find("[log]").unwrap();
    assert!(network < mesh && mesh < log, "{text}");
    let section = &text[mesh..log];
    for line in [
        "enabled = true  # built-in default",
        "listen = \"127.0.0.1:8000\"  # config file",
        "shared_key = \"BackBone\"  # built-in default",
        "allow_plain_http = false  # built-in default",
        "allow_remote = false  # built-in default",
        "sandbox = true  # environment variable SPINE_SANDBOX",
        "max_request_bytes = 104857600  # built-in default",
        "max_buffered_bytes = 1073741824  # built-in default",
        "max_connections = 128  # environment variable SPINE_MESH_MAX_CONNECTIONS",
        "token_window_secs = 900  # flag --mesh-token-window-secs",
        "replay_nonces = 1000000  # built-in default",
        "header_timeout_ms = 10000  # built-in default",
        "body_timeout_ms = 600000  # built-in default",
        "idle_timeout_ms = 120000  # built-in default",
    ] {
        assert!(section.contains(line), "{line:?} missing:\n{section}");
    }
    let reparsed = super::file::parse(Path::new("printed"), &text).unwrap();
    assert_eq!(reparsed.config, l.config);
}

#[test]
fn mesh_values_are_checked_by_the_mesh_rules_with_origins() {
    let check = |flag_values: &[(Setting, &str)], env: &Env| {
        resolve_with(None, flag_values, env).unwrap().validate()
    };
    // Every problem reported, each blamed on its setting and origin.
    let env = Env::default().with("SPINE_MESH_IDLE_TIMEOUT_MS", "99");
    let p = problems(
        check(
            &[
                (Setting::MeshListen, "nowhere"),
                (Setting::MeshMaxConnections, "0"),
                (Setting::MeshTokenWindowSecs, "59"),
                (Setting::MeshReplayNonces, "100000001"),
                (Setting::MeshHeaderTimeoutMs, "3600001"),
                (Setting::MeshBodyTimeoutMs, "100"),
            ],
            &env,
        )
        .unwrap_err(),
    );
    let settings: Vec<Setting> = p.iter().map(|p| p.setting).collect();
    assert_eq!(
        settings,
        vec![
            Setting::MeshListen,
            Setting::MeshMaxConnections,
            Setting::MeshTokenWindowSecs,
            Setting::MeshReplayNonces,
            Setting::MeshHeaderTimeoutMs,
            Setting::MeshIdleTimeoutMs,
        ],
        "{p:?}"
    );
    let text = p[0].to_string();
    assert!(
        text.starts_with("mesh.listen = \"nowhere\" (from flag --mesh-listen):")
            && text.contains("IP:PORT"),
        "{text}"
    );
    assert_eq!(
        p[1].to_string(),
        "mesh.max_connections = 0 (from flag --mesh-max-connections): must be 1 to 1000000"
    );
    assert_eq!(
        p[2].to_string(),
        "mesh.token_window_secs = 59 (from flag --mesh-token-window-secs): must be 60 to 86400"
    );
    assert!(
        p[5].to_string().starts_with(
            "mesh.idle_timeout_ms = 99 (from environment variable SPINE_MESH_IDLE_TIMEOUT_MS): must be 100 to 3600000"
        ),
        "{}",
        p[5]
    );

    // A remote address is refused with how to allow it; allowed, it needs
    // TLS or the plain-HTTP permission. The permissions are not blamed.
    let p = problems(check(&[(Setting::MeshListen, "0.0.0.0:8701")], &Env::default()).unwrap_err());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::MeshListen);
    let text = p[0].to_string();
    assert!(
        text.contains("not a loopback address")
            && text.contains("mesh.allow_remote is false (from built-in default")
            && text.contains("--mesh-allow-remote")
            && text.contains("SPINE_MESH_ALLOW_REMOTE"),
        "{text}"
    );
    let env = Env::default().with("SPINE_MESH_LISTEN", "10.0.0.1:8701");
    let p = problems(check(&[(Setting::MeshAllowRemote, "true")], &env).unwrap_err());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::MeshListen);
    let text = p[0].to_string();
    assert!(
        text.contains("(from environment variable SPINE_MESH_LISTEN)")
            && text.contains("TLS")
            && text.contains("mesh.allow_plain_http is false (from built-in default")
            && text.contains("--mesh-allow-plain-http"),
        "{text}"
    );
    check(
        &[
            (Setting::MeshAllowRemote, "true"),
            (Setting::MeshAllowPlainHttp, "true"),
        ],
        &env,
    )
    .unwrap();
    check(
        &[
            (Setting::MeshAllowRemote, "true"),
            (Setting::TlsCert, "/c.pem"),
            (Setting::TlsKey, "/k.pem"),
        ],
        &env,
    )
    .unwrap();
    // Nothing is checked while the API is disabled.
    check(
        &[
            (Setting::MeshEnabled, "false"),
            (Setting::MeshListen, "nowhere"),
            (Setting::MeshMaxConnections, "0"),
        ],
        &Env::default(),
    )
    .unwrap();

    // A chunk must fit one log record: a record limit too small for the
    // request limit is blamed on mesh.max_request_bytes, naming the record
    // limit and where it came from.
    let env = Env::default().with("SPINE_MAX_RECORD_BYTES", "16777216");
    let p = problems(check(&[], &env).unwrap_err());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::MeshMaxRequestBytes);
    let text = p[0].to_string();
    assert!(
        text.starts_with(
            "mesh.max_request_bytes = 104857600 (from built-in default): must be 1024 to storage.max_record_bytes - 65536 (16711680)"
        ) && text.contains(
            "storage.max_record_bytes is 16777216 (from environment variable SPINE_MAX_RECORD_BYTES; flag --max-record-bytes, env SPINE_MAX_RECORD_BYTES)"
        ),
        "{text}"
    );
    check(&[(Setting::MeshMaxRequestBytes, "16711680")], &env).unwrap();
    // The rest of the section is still checked.
    let p = problems(check(&[(Setting::MeshReplayNonces, "3")], &env).unwrap_err());
    let settings: Vec<Setting> = p.iter().map(|p| p.setting).collect();
    assert_eq!(
        settings,
        vec![Setting::MeshMaxRequestBytes, Setting::MeshReplayNonces],
        "{p:?}"
    );
    let p = problems(check(&[(Setting::MeshMaxRequestBytes, "16711681")], &env).unwrap_err());
    assert_eq!(p[0].setting, Setting::MeshMaxRequestBytes);
    assert!(
        p[0].to_string()
            .contains("(from flag --mesh-max-request-bytes)"),
        "{}",
        p[0]
    );
    // A record limit out of its own range is reported once, as storage's.
    let p = problems(check(&[(Setting::MaxRecordBytes, "0")], &Env::default()).unwrap_err());
    let settings: Vec<Setting> = p.iter().map(|p| p.setting).collect();
    assert_eq!(settings, vec![Setting::MaxRecordBytes], "{p:?}");
    // Any value is judged without overflow.
    let p = problems(
        check(
            &[(Setting::MeshMaxRequestBytes, "18446744073709551615")],
            &Env::default(),
        )
        .unwrap_err(),
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::MeshMaxRequestBytes);

    // The buffer must hold one request: blamed on the buffer, naming the
    // request limit.
    let p = problems(
        check(
            &[
                (Setting::MeshMaxRequestBytes, "65536"),
                (Setting::MeshMaxBufferedBytes, "4096"),
            ],
            &Env::default(),
        )
        .unwrap_err(),
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::MeshMaxBufferedBytes);
    assert!(
        p[0].message
            .contains("mesh.max_request_bytes is 65536 (from flag --mesh-max-request-bytes"),
        "{}",
        p[0]
    );
    let p = problems(
        check(
            &[(Setting::MeshMaxBufferedBytes, "1099511627777")],
            &Env::default(),
        )
        .unwrap_err(),
    );
    assert_eq!(p[0].setting, Setting::MeshMaxBufferedBytes);
    assert!(p[0].message.contains("1 TiB"), "{}", p[0]);
}

/// The shared key is a secret: never in `--print-config`'s output (unless
/// it is the public default), never in an error or a debug print.
#[test]
fn shared_key_is_never_printed_or_echoed() {
    const SECRET: &str = "correct-horse-battery-staple";
    let env = Env::default().with("SPINE_SHARED_KEY", SECRET);
    let l = resolve_with(None, &[], &env).unwrap();
    assert_eq!(l.config.mesh.shared_key, SECRET);
    assert_eq!(
        l.origin(Setting::SharedKey),
        Origin::Env("SPINE_SHARED_KEY")
    );
    l.validate().unwrap();
    assert!(!format!("{l:?}").contains(SECRET));
    let text = l.to_toml().unwrap();
    assert!(!text.contains(SECRET), "{text}");
    assert!(
        text.contains(
            "shared_key = \"\"  # redacted: a secret, from environment variable SPINE_SHARED_KEY; an empty key is refused, so give it again (env SPINE_SHARED_KEY, flag --shared-key)"
        ),
        "{text}"
    );
    // The output is still a config file: everything else round-trips.
    let tmp = tempfile::tempdir().unwrap();
    let printed = write_file(tmp.path(), &text);
    let mut expected = l.config.clone();
    expected.mesh.shared_key = String::new();
    let reparsed = super::file::parse(Path::new("printed"), &text).unwrap();
    assert_eq!(reparsed.config, expected);
    // Fed back alone, the node refuses to start rather than silently use
    // another key...
    let back = resolve_with(Some(&printed), &[], &Env::default()).unwrap();
    let p = problems(back.validate().unwrap_err());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].setting, Setting::SharedKey);
    assert!(
        p[0].to_string()
            .starts_with("mesh.shared_key = \"\" (from config file"),
        "{}",
        p[0]
    );
    // ...and with the key given again, the settings are the same.
    let back = resolve_with(Some(&printed), &[], &env).unwrap();
    assert_eq!(back.config, l.config);
    back.validate().unwrap();

    // From a file or a flag, likewise.
    let file = write_file(tmp.path(), &format!("[mesh]\nshared_key = \"{SECRET}\"\n"));
    let l = resolve_with(Some(&file), &[], &Env::default()).unwrap();
    let text = l.to_toml().unwrap();
    assert!(
        !text.contains(SECRET) && text.contains("# redacted"),
        "{text}"
    );
    let l = resolve_with(None, &[(Setting::SharedKey, SECRET)], &Env::default()).unwrap();
    let text = l.to_toml().unwrap();
    assert!(
        !text.contains(SECRET) && text.contains("a secret, from flag --shared-key"),
        "{text}"
    );

    // The public default is printed as it is.
    let env = Env::default().with("SPINE_SHARED_KEY", "BackBone");
    let text = resolve_with(None, &[], &env).unwrap().to_toml().unwrap();
    assert!(
        text.contains("shared_key = \"BackBone\"  # environment variable SPINE_SHARED_KEY"),
        "{text}"
    );

    // A key of the wrong length is refused without being shown.
    let long = format!("{SECRET}{}", "x".repeat(1024));
    let env = Env::default().with("SPINE_SHARED_KEY", long.as_str());
    let e = resolve_with(None, &[], &env)
        .unwrap()
        .validate()
        .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    let p = problems(e);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        p[0].to_string(),
        format!(
            "mesh.shared_key = <redacted: {} bytes> (from environment variable SPINE_SHARED_KEY): must be 1 to 1024 bytes",
            long.len()
        )
    );
    // Other problems in the section do not show it either.
    let env = Env::default().with("SPINE_SHARED_KEY", SECRET);
    let e = resolve_with(
        None,
        &[
            (Setting::MeshListen, "0.0.0.0:1"),
            (Setting::MeshReplayNonces, "1"),
        ],
        &env,
    )
    .unwrap()
    .validate()
    .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(SECRET), "{shown}");
}

#[cfg(unix)]
#[test]
fn unparsable_shared_key_is_not_echoed() {
    use std::os::unix::ffi::OsStrExt;
    let raw = OsStr::from_bytes(b"secret-\xff-key");
    let e = resolve(None, &[(Setting::SharedKey, raw.to_os_string())], &|_| None).unwrap_err();
    assert_eq!(e.code(), "CONFIG_VALUE_UNPARSABLE");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("secret"), "{shown}");
    assert!(
        shown.contains("flag --shared-key") && shown.contains("UTF-8"),
        "{shown}"
    );
    let env = |name: &str| (name == "SPINE_SHARED_KEY").then(|| raw.to_os_string());
    let e = resolve(None, &[], &env).unwrap_err();
    assert!(!format!("{e} {e:?}").contains("secret"), "{e}");
}

#[test]
fn unknown_keys_in_mesh_are_named() {
    let e = super::file::parse(
        Path::new("f.toml"),
        "[mesh]\nlisten = \"127.0.0.1:1\"\n\nshared_secret = \"x\"\n",
    )
    .unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("shared_secret") && shown.contains("line 4"),
        "{shown}"
    );
}

#[test]
fn services_settings_layer_and_are_validated_each_on_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(
        tmp.path(),
        "[services]\npatients = 50\nmax_pending = 0\ndirectory = \"/etc/spine/services.toml\"\n",
    );
    let l = resolve_with(
        Some(&file),
        &[(Setting::ServicesTickMs, "5")],
        &Env::default(),
    )
    .unwrap();
    assert_eq!(l.config.services.patients, 50);
    assert_eq!(
        l.config.services.directory.as_deref(),
        Some(Path::new("/etc/spine/services.toml"))
    );
    let text = l.validate().unwrap_err().to_string();
    assert!(
        text.contains("services.max_pending") && text.contains("services.tick_ms"),
        "both bad values are blamed on their settings: {text}"
    );
    assert!(!text.contains("services.patients"), "{text}");
}
