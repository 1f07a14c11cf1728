//! Reading the TOML config file.
//!
//! Every table in the model denies unknown fields, so a misspelt key is an
//! error naming the key and (from the parser's span) the line, rather than
//! a setting silently left at its default. Which settings the file spelled
//! out is recorded so that later errors can blame the file for them.

use std::path::Path;

use super::error::ConfigError;
use super::settings::Setting;
use super::NodeConfig;

/// A parsed config file.
#[derive(Debug)]
pub struct ParsedFile {
    /// The file's values over the defaults.
    pub config: NodeConfig,
    /// Settings the file gives explicitly.
    pub present: Vec<Setting>,
}

/// Reads and parses the config file at `path`.
pub fn load(path: &Path) -> Result<ParsedFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::FileUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses config file contents; `path` is only used in errors.
pub fn parse(path: &Path, text: &str) -> Result<ParsedFile, ConfigError> {
    let invalid = |e: toml::de::Error| ConfigError::FileInvalid {
        path: path.to_path_buf(),
        line: e.span().map(|span| line_of(text, span.start)),
        message: e.message().trim().to_string(),
    };
    let config: NodeConfig = toml::from_str(text).map_err(invalid)?;
    let table: toml::Table = toml::from_str(text).map_err(invalid)?;
    let present = Setting::ALL
        .into_iter()
        .filter(|s| {
            let (section, field) = s.section_and_field();
            table
                .get(section)
                .and_then(toml::Value::as_table)
                .is_some_and(|t| t.contains_key(field))
        })
        .collect();
    Ok(ParsedFile { config, present })
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use spine_core::ErrorCode;
    use std::path::PathBuf;
    use std::time::Duration;

    fn parse_str(text: &str) -> Result<ParsedFile, ConfigError> {
        parse(Path::new("/etc/spine.toml"), text)
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let parsed = parse_str("").unwrap();
        assert_eq!(parsed.config, NodeConfig::default());
        assert!(parsed.present.is_empty());
    }

    #[test]
    fn sections_fill_the_model_and_record_presence() {
        let parsed = parse_str(
            r#"
[storage]
data_dir = "/var/lib/spine"
segment_bytes = 1_048_576
inbox_expiry = 3600

[directory]
toml = "/etc/spine/directory.toml"
hash_iterations = 5

[log]
format = "json"
level = "debug"
"#,
        )
        .unwrap();
        let c = &parsed.config;
        assert_eq!(c.storage.data_dir, PathBuf::from("/var/lib/spine"));
        assert_eq!(c.storage.segment_bytes, 1 << 20);
        assert_eq!(c.storage.inbox_expiry, Duration::from_secs(3600));
        assert_eq!(
            c.storage.max_record_bytes,
            NodeConfig::default().storage.max_record_bytes
        );
        assert_eq!(c.directory.hash_iterations, 5);
        assert_eq!(c.log.format, super::super::LogFormat::Json);
        assert_eq!(
            parsed.present,
            vec![
                Setting::DataDir,
                Setting::SegmentBytes,
                Setting::InboxExpiry,
                Setting::DirectoryToml,
                Setting::HashIterations,
                Setting::LogFormat,
                Setting::LogLevel,
            ]
        );
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let e = parse_str("[storage]\ndata_dir = \"x\"\nsegmnt_bytes = 5\n").unwrap_err();
        assert_eq!(e.code(), "CONFIG_FILE_INVALID");
        let text = e.to_string();
        assert!(text.contains("/etc/spine.toml line 3"), "{text}");
        assert!(text.contains("segmnt_bytes"), "{text}");
    }

    #[test]
    fn unknown_section_names_the_section() {
        let e = parse_str("[storage]\n\n[networking]\nport = 1\n").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("networking"), "{text}");
        assert!(text.contains("line 3"), "{text}");
    }

    #[test]
    fn unknown_key_in_directory_and_log() {
        for text in ["[directory]\nmailbox = \"a\"\n", "[log]\nlevels = \"a\"\n"] {
            let e = parse_str(text).unwrap_err();
            assert!(e.to_string().contains("line 2"), "{e}");
        }
    }

    #[test]
    fn wrong_types_are_errors_with_lines() {
        let e = parse_str("[storage]\nsegment_bytes = \"big\"\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = parse_str("[log]\nformat = \"xml\"\n").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("xml") && text.contains("json"), "{text}");
        let e = parse_str("[storage]\ninbox_expiry = -1\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = parse_str("storage = 5\n").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn syntax_errors_have_lines() {
        let e = parse_str("[storage]\ndata_dir = \n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn missing_file_is_unreadable() {
        let e = load(Path::new("/nonexistent/spine.toml")).unwrap_err();
        assert_eq!(e.code(), "CONFIG_FILE_UNREADABLE");
        assert!(e.to_string().contains("/nonexistent/spine.toml"));
    }
}
