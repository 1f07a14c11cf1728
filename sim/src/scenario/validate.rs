//! [`Scenario::validate`]: every range, every reference, the generated ids,
//! and the event cap. The first problem found is reported, with the path
//! of its key.

use std::collections::{BTreeMap, BTreeSet};

use spine_core::envelope::MAX_CHUNKS;
use spine_core::ids::{MailboxId, OdsCode};

use super::classes::MAX_ODS_PREFIX;
use super::{
    ConsumerKind, Diurnal, FaultKind, FaultSpec, Flow, MailboxClass, Peak, Scenario, ScenarioError,
    SizeDist, Targets, DIURNAL_NAMES, MAX_CHUNK_BYTES, MAX_DURATION, MAX_MAILBOXES, MAX_MAX_EVENTS,
    MAX_MESSAGE_BYTES, MAX_MULTIPLIER, MAX_RATE,
};

/// Longest retention accepted (ten years, as `spine serve` accepts).
const MAX_RETENTION: u64 = 10 * 365 * 86_400;
/// Most organisations in one class.
const MAX_ORGANISATIONS: u32 = 1_000_000;
/// Most mailboxes per organisation.
const MAX_MAILBOXES_PER_ORG: u32 = 999;
/// Longest class or flow name.
const MAX_NAME: usize = 64;

type Check = Result<(), ScenarioError>;

struct Validator<'a> {
    file: &'a str,
}

impl Validator<'_> {
    fn range(&self, key: impl Into<String>, problem: impl Into<String>) -> ScenarioError {
        ScenarioError::OutOfRange {
            file: self.file.to_owned(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    fn invalid(&self, key: impl Into<String>, problem: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.to_owned(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// `value` must lie in `min..=max`.
    fn within(&self, key: &str, value: u64, min: u64, max: u64, unit: &str) -> Check {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(self.range(key, format!("is {value}; use {min} to {max}{unit}")))
        }
    }

    /// `value` must be finite and lie in `min..=max`.
    fn within_f(&self, key: &str, value: f64, min: f64, max: f64) -> Check {
        if value.is_finite() && value >= min && value <= max {
            Ok(())
        } else {
            Err(self.range(key, format!("is {value}; use a number from {min} to {max}")))
        }
    }

    fn name(&self, key: &str, name: &str, what: &str) -> Check {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(())
        } else {
            Err(self.invalid(
                key,
                format!(
                    "is {name:?}; a {what} name is 1 to {MAX_NAME} characters from \
                     a-z, 0-9, '_' and '-'"
                ),
            ))
        }
    }

    fn scenario(&self, s: &Scenario) -> Check {
        let name_ok = !s.name.trim().is_empty()
            && s.name.chars().count() <= 200
            && !s.name.chars().any(char::is_control);
        if !name_ok {
            return Err(self.invalid(
                "name",
                "must be 1 to 200 characters without control characters",
            ));
        }
        self.within("duration", s.duration, 1, MAX_DURATION, " seconds")?;
        if s.start
            .checked_add(std::time::Duration::from_secs(s.duration))
            .is_none()
        {
            return Err(self.range("duration", "runs past 9999-12-31; start earlier"));
        }
        if !(s.scale.is_finite() && s.scale > 0.0 && s.scale <= 1.0) {
            return Err(self.range(
                "scale",
                format!("is {}; use a fraction above 0 and at most 1", s.scale),
            ));
        }
        self.within("max_events", s.max_events, 1, MAX_MAX_EVENTS, "")?;
        self.node(s)?;
        self.classes(s)?;
        if s.flows.is_empty() {
            return Err(self.invalid("flow", "is empty; define at least one [[flow]]"));
        }
        let mut flow_names = BTreeSet::new();
        for (i, flow) in s.flows.iter().enumerate() {
            let key = format!("flow[{i}]");
            if !flow_names.insert(flow.name.as_str()) {
                return Err(ScenarioError::Duplicate {
                    file: self.file.to_owned(),
                    key: format!("{key}.name"),
                    kind: "flow name",
                    name: flow.name.clone(),
                });
            }
            self.flow(s, &key, flow)?;
        }
        self.registrations(s)?;
        for (i, peak) in s.peaks.iter().enumerate() {
            self.peak(s, &format!("peak[{i}]"), peak)?;
        }
        for (i, fault) in s.faults.iter().enumerate() {
            self.fault(s, &format!("fault[{i}]"), fault)?;
        }
        let estimated = s.estimated_events();
        if estimated > s.max_events {
            return Err(ScenarioError::TooManyEvents {
                file: self.file.to_owned(),
                estimated,
                cap: s.max_events,
            });
        }
        Ok(())
    }

    fn node(&self, s: &Scenario) -> Check {
        let n = &s.node;
        self.within("node.partitions", u64::from(n.partitions), 1, 4096, "")?;
        self.within(
            "node.inbox_expiry",
            n.inbox_expiry,
            1,
            MAX_RETENTION,
            " seconds",
        )?;
        if let Some(purge) = n.purge_after {
            if purge < n.inbox_expiry {
                return Err(self.range(
                    "node.purge_after",
                    format!(
                        "is {purge}, shorter than node.inbox_expiry ({}); a message must stay \
                         until it expires",
                        n.inbox_expiry
                    ),
                ));
            }
            self.within("node.purge_after", purge, 1, MAX_RETENTION, " seconds")?;
        }
        self.within("node.expiry_tick", n.expiry_tick, 1, 3600, " seconds")?;
        self.within(
            "node.sample_interval",
            n.sample_interval,
            1,
            86_400,
            " seconds",
        )?;
        self.within(
            "node.memory_limit_bytes",
            n.memory_limit_bytes,
            16 << 20,
            1 << 40,
            " bytes",
        )?;
        self.within(
            "node.service_requests_per_send",
            u64::from(n.service_requests_per_send),
            0,
            1000,
            "",
        )
    }

    fn classes(&self, s: &Scenario) -> Check {
        if s.classes.is_empty() {
            return Err(self.invalid("class", "is empty; define at least one [[class]]"));
        }
        let mut names = BTreeSet::new();
        let mut prefixes: BTreeMap<String, usize> = BTreeMap::new();
        for (i, class) in s.classes.iter().enumerate() {
            let key = format!("class[{i}]");
            self.name(&format!("{key}.name"), &class.name, "class")?;
            if class.name == "any" {
                return Err(self.invalid(
                    format!("{key}.name"),
                    "is \"any\", which flows use for every class; choose another name",
                ));
            }
            if !names.insert(class.name.as_str()) {
                return Err(ScenarioError::Duplicate {
                    file: self.file.to_owned(),
                    key: format!("{key}.name"),
                    kind: "class name",
                    name: class.name.clone(),
                });
            }
            self.class(&key, class)?;
            let prefix = class.prefix();
            if let Some(other) = prefixes.insert(prefix.clone(), i) {
                return Err(self.invalid(
                    format!("{key}.ods_prefix"),
                    format!(
                        "is {prefix:?}, the same as class[{other}]'s; ODS codes must be \
                         unique, so give one of them a different `ods_prefix`"
                    ),
                ));
            }
        }
        let total = s.mailbox_count();
        if total > MAX_MAILBOXES {
            return Err(self.range(
                "class",
                format!("defines {total} mailboxes in all; at most {MAX_MAILBOXES} are supported"),
            ));
        }
        Ok(())
    }

    fn class(&self, key: &str, class: &MailboxClass) -> Check {
        self.within(
            &format!("{key}.organisations"),
            u64::from(class.organisations),
            1,
            u64::from(MAX_ORGANISATIONS),
            "",
        )?;
        self.within(
            &format!("{key}.mailboxes_per_organisation"),
            u64::from(class.mailboxes_per_organisation),
            1,
            u64::from(MAX_MAILBOXES_PER_ORG),
            "",
        )?;
        let prefix = class.prefix();
        let prefix_ok = (1..=MAX_ODS_PREFIX).contains(&prefix.len())
            && prefix.chars().all(|c| c.is_ascii_alphabetic());
        if !prefix_ok {
            return Err(self.invalid(
                format!("{key}.ods_prefix"),
                format!("is {prefix:?}; use 1 to {MAX_ODS_PREFIX} letters A-Z"),
            ));
        }
        let ods_len = prefix.len() + class.ods_digits();
        if ods_len > OdsCode::MAX_LEN {
            return Err(self.invalid(
                format!("{key}.ods_prefix"),
                format!(
                    "is {prefix:?}; with {} digits for {} organisations the ODS codes \
                     would be {ods_len} characters, over {}; shorten the prefix",
                    class.ods_digits(),
                    class.organisations,
                    OdsCode::MAX_LEN
                ),
            ));
        }
        // The generated ids must parse: check the longest of each.
        let sample_ods = format!("{prefix}{}", "9".repeat(class.ods_digits()));
        let sample_mailbox = format!("{sample_ods}OT999");
        if OdsCode::parse(&sample_ods).is_err() || MailboxId::parse(&sample_mailbox).is_err() {
            return Err(self.invalid(
                format!("{key}.ods_prefix"),
                format!("is {prefix:?}, which does not give valid ODS codes and mailbox ids"),
            ));
        }
        self.within_f(&format!("{key}.skew"), class.skew, 0.0, 5.0)?;
        let c = &class.consumer;
        let ck = format!("{key}.consumer");
        if c.mode == ConsumerKind::Poll {
            self.within(&format!("{ck}.interval"), c.interval, 1, 86_400, " seconds")?;
            if let Some(max) = c.interval_max {
                self.within(
                    &format!("{ck}.interval_max"),
                    max,
                    c.interval,
                    86_400,
                    " seconds (at least `interval`)",
                )?;
            }
            self.within(&format!("{ck}.batch"), c.batch as u64, 1, 5000, "")?;
        }
        if c.mode == ConsumerKind::Push {
            self.within(&format!("{ck}.delay_ms"), c.delay_ms, 0, 86_400_000, " ms")?;
        }
        self.within_f(&format!("{ck}.slow_fraction"), c.slow_fraction, 0.0, 1.0)?;
        self.within_f(
            &format!("{ck}.absent_fraction"),
            c.absent_fraction,
            0.0,
            1.0,
        )?;
        if c.slow_fraction + c.absent_fraction > 1.0 {
            return Err(self.range(
                format!("{ck}.slow_fraction"),
                "plus absent_fraction is over 1; a mailbox is slow or absent, not both",
            ));
        }
        self.within(&format!("{ck}.slow_factor"), c.slow_factor, 1, 1000, "")
    }

    fn targets(&self, s: &Scenario, key: &str, targets: &Targets) -> Check {
        let known = || {
            let names: Vec<&str> = s.classes.iter().map(|c| c.name.as_str()).collect();
            format!("any, {}", names.join(", "))
        };
        let check_name = |name: &str| -> Check {
            if name == "any" {
                return Err(self.invalid(
                    key,
                    "lists \"any\" with other classes; write `\"any\"` on its own",
                ));
            }
            if s.class_index(name).is_none() {
                return Err(ScenarioError::UnknownName {
                    file: self.file.to_owned(),
                    key: key.to_owned(),
                    kind: "class",
                    name: name.to_owned(),
                    known: known(),
                });
            }
            Ok(())
        };
        match targets {
            Targets::Any => Ok(()),
            Targets::Classes(names) => {
                if names.is_empty() {
                    return Err(self.invalid(key, "is an empty list; name at least one class"));
                }
                let mut seen = BTreeSet::new();
                for name in names {
                    check_name(name)?;
                    if !seen.insert(name.as_str()) {
                        return Err(ScenarioError::Duplicate {
                            file: self.file.to_owned(),
                            key: key.to_owned(),
                            kind: "class",
                            name: name.clone(),
                        });
                    }
                }
                Ok(())
            }
            Targets::Weighted(pairs) => {
                if pairs.is_empty() {
                    return Err(
                        self.invalid(key, "is an empty table; give at least one class a share")
                    );
                }
                for (name, share) in pairs {
                    check_name(name)?;
                    if !(share.is_finite() && *share > 0.0) {
                        return Err(self.range(
                            format!("{key}.{name}"),
                            format!("is {share}; a share must be a number above 0"),
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    fn flow(&self, s: &Scenario, key: &str, flow: &Flow) -> Check {
        let name_ok = !flow.name.is_empty()
            && flow.name.len() <= MAX_NAME
            && flow.name.chars().all(|c| c.is_ascii_graphic());
        if !name_ok {
            return Err(self.invalid(
                format!("{key}.name"),
                format!(
                    "is {:?}; use 1 to {MAX_NAME} visible ASCII characters",
                    flow.name
                ),
            ));
        }
        self.within_f(&format!("{key}.rate"), flow.rate, 0.0, MAX_RATE)?;
        self.targets(s, &format!("{key}.from"), &flow.from)?;
        self.targets(s, &format!("{key}.to"), &flow.to)?;
        self.diurnal(&format!("{key}.diurnal"), &flow.diurnal)?;
        self.size(&format!("{key}.size"), &flow.size, false)?;
        self.within(
            &format!("{key}.chunk_bytes"),
            flow.chunk_bytes,
            1,
            MAX_CHUNK_BYTES,
            " bytes",
        )?;
        let (_, largest) = flow.size.bounds();
        let chunks = largest.div_ceil(flow.chunk_bytes.max(1));
        if chunks > u64::from(MAX_CHUNKS) {
            return Err(self.range(
                format!("{key}.chunk_bytes"),
                format!(
                    "is {}, so the largest message ({largest} bytes) would need {chunks} \
                     chunks, over the {MAX_CHUNKS} a message may have; raise chunk_bytes",
                    flow.chunk_bytes
                ),
            ));
        }
        for (i, peak) in flow.peaks.iter().enumerate() {
            self.peak(s, &format!("{key}.peak[{i}]"), peak)?;
        }
        Ok(())
    }

    fn diurnal(&self, key: &str, diurnal: &Diurnal) -> Check {
        match diurnal {
            Diurnal::Named(name) if !DIURNAL_NAMES.contains(&name.as_str()) => {
                Err(ScenarioError::UnknownName {
                    file: self.file.to_owned(),
                    key: key.to_owned(),
                    kind: "diurnal curve",
                    name: name.clone(),
                    known: DIURNAL_NAMES.join(", "),
                })
            }
            Diurnal::Named(_) => Ok(()),
            Diurnal::Hourly(values) => {
                if values.len() != 24 {
                    return Err(self.invalid(
                        key,
                        format!(
                            "has {} values; give 24 hourly weights, hour 0 to hour 23 (UTC)",
                            values.len()
                        ),
                    ));
                }
                for (hour, v) in values.iter().enumerate() {
                    self.within_f(&format!("{key}[{hour}]"), *v, 0.0, 1e6)?;
                }
                if values.iter().all(|v| *v == 0.0) {
                    return Err(self.invalid(key, "is all zeros; at least one hour needs traffic"));
                }
                Ok(())
            }
        }
    }

    fn size(&self, key: &str, size: &SizeDist, nested: bool) -> Check {
        let bytes =
            |k: &str, v: u64| self.within(&format!("{key}.{k}"), v, 1, MAX_MESSAGE_BYTES, " bytes");
        match size {
            SizeDist::Fixed(n) => bytes("fixed", *n),
            SizeDist::Uniform { min, max } => {
                bytes("uniform.min", *min)?;
                bytes("uniform.max", *max)?;
                if min > max {
                    return Err(self.range(
                        format!("{key}.uniform.min"),
                        format!("is {min}, above max ({max})"),
                    ));
                }
                Ok(())
            }
            SizeDist::LogNormal {
                median, sigma, max, ..
            } => {
                bytes("lognormal.median", *median)?;
                self.within_f(&format!("{key}.lognormal.sigma"), *sigma, 0.0, 4.0)?;
                let (lo, hi) = size.bounds();
                bytes("lognormal.min", lo)?;
                if max.is_some() {
                    bytes("lognormal.max", hi)?;
                } else if hi > MAX_MESSAGE_BYTES {
                    return Err(self.range(
                        format!("{key}.lognormal.max"),
                        format!(
                            "defaults to 100 × median = {hi} bytes, over {MAX_MESSAGE_BYTES}; \
                             set max explicitly"
                        ),
                    ));
                }
                if lo > hi {
                    return Err(self.range(
                        format!("{key}.lognormal.min"),
                        format!("is {lo}, above max ({hi})"),
                    ));
                }
                Ok(())
            }
            SizeDist::Mix(parts) => {
                if nested {
                    return Err(self.invalid(
                        format!("{key}.mix"),
                        "is inside another mix; list all the parts in one mix",
                    ));
                }
                if parts.is_empty() {
                    return Err(
                        self.invalid(format!("{key}.mix"), "is empty; give at least one part")
                    );
                }
                for (i, part) in parts.iter().enumerate() {
                    let pk = format!("{key}.mix[{i}]");
                    if !(part.weight.is_finite() && part.weight > 0.0) {
                        return Err(self.range(
                            format!("{pk}.weight"),
                            format!("is {}; a weight must be a number above 0", part.weight),
                        ));
                    }
                    self.size(&format!("{pk}.size"), &part.size, true)?;
                }
                Ok(())
            }
        }
    }

    fn peak(&self, s: &Scenario, key: &str, peak: &Peak) -> Check {
        if peak.at >= s.duration {
            return Err(self.range(
                format!("{key}.at"),
                format!(
                    "is {}, not before the end of the scenario (duration {}); peaks start \
                     inside the run",
                    peak.at, s.duration
                ),
            ));
        }
        self.within(
            &format!("{key}.duration"),
            peak.duration,
            1,
            MAX_DURATION,
            " seconds",
        )?;
        self.within_f(
            &format!("{key}.multiplier"),
            peak.multiplier,
            0.0,
            MAX_MULTIPLIER,
        )
    }

    fn fault(&self, s: &Scenario, key: &str, fault: &FaultSpec) -> Check {
        if fault.at >= s.duration {
            return Err(self.range(
                format!("{key}.at"),
                format!(
                    "is {}, not before the end of the scenario (duration {})",
                    fault.at, s.duration
                ),
            ));
        }
        let takes = fault.kind.parameters();
        if let Some(extra) = fault.given().into_iter().find(|p| !takes.contains(p)) {
            let takes = if takes.is_empty() {
                "no parameters".to_owned()
            } else {
                format!("only {}", takes.join(", "))
            };
            return Err(self.invalid(
                format!("{key}.{extra}"),
                format!(
                    "does not apply to kind {:?}, which takes {takes}",
                    fault.kind.name()
                ),
            ));
        }
        match fault.kind {
            FaultKind::PartitionPanic => {
                let p = fault.partition.unwrap_or(0);
                if p >= s.node.partitions {
                    return Err(self.range(
                        format!("{key}.partition"),
                        format!(
                            "is {p}; the node has {} partitions, numbered from 0",
                            s.node.partitions
                        ),
                    ));
                }
                Ok(())
            }
            FaultKind::DiskStall => {
                if let Some(ms) = fault.millis {
                    self.within(&format!("{key}.millis"), ms, 1, 60_000, " ms")?;
                }
                if let Some(d) = fault.duration {
                    self.within(&format!("{key}.duration"), d, 1, 86_400, " seconds")?;
                }
                Ok(())
            }
            FaultKind::ReconnectStorm => match fault.connections {
                Some(n) => self.within(&format!("{key}.connections"), u64::from(n), 1, 100_000, ""),
                None => Ok(()),
            },
            FaultKind::MalformedInput => match fault.frames {
                Some(n) => self.within(&format!("{key}.frames"), u64::from(n), 1, 1_000_000, ""),
                None => Ok(()),
            },
            FaultKind::NodeCrash | FaultKind::FsyncFailure | FaultKind::DropConnections => Ok(()),
        }
    }

    /// Flows sharing a workflow id must agree on registering it.
    fn registrations(&self, s: &Scenario) -> Check {
        let mut seen: BTreeMap<&str, (usize, bool)> = BTreeMap::new();
        for (i, flow) in s.flows.iter().enumerate() {
            match seen.get(flow.workflow.as_str()) {
                Some(&(first, registered)) if registered != flow.registered => {
                    return Err(self.invalid(
                        format!("flow[{i}].registered"),
                        format!(
                            "is {}, but flow[{first}] uses the same workflow {} with registered \
                             = {registered}; a workflow is registered or not, so make them agree",
                            flow.registered, flow.workflow
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    seen.insert(flow.workflow.as_str(), (i, flow.registered));
                }
            }
        }
        Ok(())
    }
}

impl Scenario {
    /// Validates, naming `file` in errors.
    pub(crate) fn validate_in(&self, file: &str) -> Result<(), ScenarioError> {
        Validator { file }.scenario(self)
    }
}
