//! `spine serve --print-config`: the effective configuration as TOML.
//!
//! The output is a valid config file (feeding it back gives the same
//! settings); comments say where each value came from. Keys the model has
//! but the settings table lacks are still printed, so nothing is hidden.
//!
//! The one exception is a secret ([`Setting::is_secret`], the MESH shared
//! key): unless it is the public default it is printed as `""`, with a
//! comment saying it was redacted and where it came from. Fed back, the
//! empty key is refused while the MESH API is enabled, so the node never
//! silently runs with a key other than the operator's; giving the key
//! again (by its environment variable, which overrides the file) restores
//! the same settings.

use std::fmt::Write as _;

use super::error::ConfigError;
use super::settings::{secret_is_public, Setting};
use super::Loaded;

const SECTIONS: [&str; Setting::SECTIONS.len()] = Setting::SECTIONS;

/// Renders `loaded` as annotated TOML.
pub fn render(loaded: &Loaded) -> Result<String, ConfigError> {
    let table = toml::Table::try_from(&loaded.config)
        .map_err(|e| ConfigError::Print(format!("{e}; paths must be valid UTF-8 to print")))?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Effective Spine configuration (built-in defaults < config file < environment < flags)."
    );
    let mut sections: Vec<&str> = SECTIONS.to_vec();
    sections.extend(
        table
            .keys()
            .map(String::as_str)
            .filter(|k| !SECTIONS.contains(k)),
    );
    for section in sections {
        let empty = toml::Table::new();
        let values = table
            .get(section)
            .and_then(toml::Value::as_table)
            .unwrap_or(&empty);
        let _ = writeln!(out, "\n[{section}]");
        let mut known = Vec::new();
        for setting in Setting::ALL {
            let (s, field) = setting.section_and_field();
            if s != section {
                continue;
            }
            known.push(field);
            let origin = loaded.origin(setting);
            match values.get(field) {
                Some(value)
                    if setting.is_secret()
                        && value.as_str().is_some_and(|v| !secret_is_public(v)) =>
                {
                    let _ = writeln!(
                        out,
                        "{field} = \"\"  # redacted: a secret, from {origin}; an empty key is refused, so give it again (env {}, flag {})",
                        setting.env(),
                        setting.flag()
                    );
                }
                Some(value) => {
                    let unit = match setting {
                        Setting::InboxExpiry | Setting::PurgeAfter => "seconds; ",
                        _ => "",
                    };
                    let _ = writeln!(out, "{field} = {value}  # {unit}{origin}");
                }
                None => {
                    let _ = writeln!(
                        out,
                        "# {field} is not set (env {}, flag {})",
                        setting.env(),
                        setting.flag()
                    );
                }
            }
        }
        for (field, value) in values {
            if !known.contains(&field.as_str()) {
                let _ = writeln!(out, "{field} = {value}");
            }
        }
    }
    Ok(out)
}
