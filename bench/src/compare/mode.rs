//! The compared modes: which server, configured how, and what its
//! acknowledgement means.
//!
//! Invariants: every mode has a stable name (the `--peers` value and the
//! report's row key) and says honestly whether a successful publish
//! acknowledgement means the message is on disk (`durable_ack`); the text
//! in [`Mode::ack_meaning`] is what the report prints beside it.

use std::fmt;
use std::str::FromStr;

/// One column of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Mode {
    /// NATS JetStream, file store, default `sync_interval` (2 min).
    NatsDefault,
    /// NATS JetStream, file store, `sync_interval: always`.
    NatsSyncAlways,
    /// RabbitMQ quorum queue with publisher confirms.
    RabbitQuorum,
    /// Redis Streams with `appendfsync always`.
    RedisAofAlways,
    /// Spine over its native protocol (ack after fdatasync).
    Spine,
}

impl Mode {
    /// Every mode, in report order (Spine last: it is compared with the rest).
    pub(crate) const ALL: [Mode; 5] = [
        Mode::NatsDefault,
        Mode::NatsSyncAlways,
        Mode::RabbitQuorum,
        Mode::RedisAofAlways,
        Mode::Spine,
    ];

    /// The stable name used on the command line and in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::NatsDefault => "nats-js-default",
            Mode::NatsSyncAlways => "nats-js-sync-always",
            Mode::RabbitQuorum => "rabbitmq-quorum",
            Mode::RedisAofAlways => "redis-aof-always",
            Mode::Spine => "spine",
        }
    }

    /// Whether an acknowledged publish is on disk when the client hears of it.
    pub(crate) fn durable_ack(self) -> bool {
        !matches!(self, Mode::NatsDefault)
    }

    /// What the acknowledgement the latency is measured to means.
    pub(crate) fn ack_meaning(self) -> &'static str {
        match self {
            Mode::NatsDefault => {
                "JetStream PubAck; file store with the default sync_interval (2 min): acknowledged writes are NOT yet on disk"
            }
            Mode::NatsSyncAlways => {
                "JetStream PubAck; file store with sync_interval: always (fsync before the ack)"
            }
            Mode::RabbitQuorum => {
                "publisher confirm from a quorum queue (Raft log fsynced before the confirm)"
            }
            Mode::RedisAofAlways => {
                "XADD reply with appendonly yes, appendfsync always (AOF fsynced before the reply)"
            }
            Mode::Spine => "SEND_OK: acknowledged means durable (fdatasync returned)",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Mode::ALL.iter().map(|m| m.name()).collect();
                format!("unknown peer {s:?}: expected one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_nats_default_is_not_durable() {
        for m in Mode::ALL {
            assert_eq!(m.name().parse::<Mode>(), Ok(m));
            assert_eq!(m.durable_ack(), m != Mode::NatsDefault);
            assert!(!m.ack_meaning().is_empty());
        }
        assert!("kafka".parse::<Mode>().is_err());
    }
}
