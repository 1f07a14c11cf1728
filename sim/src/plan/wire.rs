//! Network bytes per message on the native protocol, computed with
//! `spine-protocol`'s own encoder rather than guessed.
//!
//! Invariants and why:
//! - One message's traffic is the frames of its life cycle as the consumers
//!   of a plan run drive it: `SEND`→`SEND_OK`, its entry in an
//!   `INBOX_PAGE` (the marginal bytes of one more entry; the page's own
//!   framing and the `LIST_INBOX` request are amortised over the page and
//!   depend on how often recipients poll, so they are left out),
//!   `DOWNLOAD`→`DOWNLOAD_DATA` (split into pieces as the server splits
//!   them) and `ACKNOWLEDGE`→`ACK_OK`.
//! - Requests are bytes *into* the node, answers bytes *out of* it; the
//!   body crosses twice (in with the send, out with the download).
//! - Frame bytes only: TCP/IP and TLS framing, `HELLO`s and keep-alives are
//!   not included, and the report says so. MESH's HTTP API costs more per
//!   message (text headers), which is also stated, not computed.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use spine_actors::transport::NetworkConfig;
use spine_core::envelope::Envelope;
use spine_core::message::{MessageStatus, SendHeader};
use spine_protocol::{split_download, InboxEntry, Limits, Request, Response, SendOk};

/// One frame of a message's life cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameBytes {
    /// The frame kind (`SEND`, `SEND_OK`, ...).
    pub frame: String,
    /// Into the node (a request) or out of it (an answer).
    pub direction: Direction,
    /// Bytes on the wire, length prefix included.
    pub bytes: u64,
}

/// Which way a frame travels, seen from the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client to node.
    In,
    /// Node to client.
    Out,
}

/// Network bytes per message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireBytes {
    /// The message body's size.
    pub body_bytes: u64,
    /// Bytes into the node per message.
    pub in_per_msg: u64,
    /// Bytes out of the node per message.
    pub out_per_msg: u64,
    /// `in + out − 2 × body`: what the protocol adds.
    pub overhead_per_msg: u64,
    /// The frames counted.
    pub frames: Vec<FrameBytes>,
}

/// The bytes of one message with this envelope (as the node stored it) and
/// a body of `body_bytes`.
pub fn wire_bytes(envelope: &Arc<Envelope>, body_bytes: usize) -> anyhow::Result<WireBytes> {
    let limits = Limits::default();
    let body = Bytes::from(vec![0u8; body_bytes]);
    let mut frames = Vec::new();
    let mut add = |frame: &str, direction: Direction, bytes: usize| {
        frames.push(FrameBytes {
            frame: frame.to_string(),
            direction,
            bytes: bytes as u64,
        });
    };
    let mut header = SendHeader::simple(envelope.recipient.clone(), envelope.workflow_id.clone());
    header.total_chunks = envelope.total_chunks.max(1);
    let send = Request::Send {
        header,
        body: body.clone(),
    };
    add("SEND", Direction::In, send.to_frame(1, &limits)?.len());
    let ok = Response::SendOk(SendOk {
        message_id: envelope.message_id,
        duplicate: false,
        status: MessageStatus::Accepted,
    });
    add("SEND_OK", Direction::Out, ok.to_frame(1, &limits)?.len());
    let page = |n: usize| -> anyhow::Result<usize> {
        let entries = (0..n)
            .map(|i| InboxEntry::from_envelope(envelope, i as u64 + 1))
            .collect();
        let r = Response::InboxPage {
            messages: entries,
            next: None,
            total: n as u64,
        };
        Ok(r.to_frame(1, &limits)?.len())
    };
    // The marginal bytes of one entry, measured over 8 entries so the
    // archive's alignment padding averages out.
    let entry = page(9)?.saturating_sub(page(1)?).div_ceil(8);
    add("INBOX_PAGE entry", Direction::Out, entry);
    let download = Request::Download {
        message_id: envelope.message_id,
        chunk_no: 1,
    };
    add(
        "DOWNLOAD",
        Direction::In,
        download.to_frame(1, &limits)?.len(),
    );
    let piece = NetworkConfig::default().download_piece_bytes as usize;
    let mut data = 0;
    for r in split_download(Arc::clone(envelope), 1, body, piece) {
        data += r.to_frame(1, &limits)?.len();
    }
    add("DOWNLOAD_DATA", Direction::Out, data);
    let ack = Request::Acknowledge {
        message_id: envelope.message_id,
    };
    add(
        "ACKNOWLEDGE",
        Direction::In,
        ack.to_frame(1, &limits)?.len(),
    );
    add(
        "ACK_OK",
        Direction::Out,
        Response::AckOk.to_frame(1, &limits)?.len(),
    );
    let sum = |d: Direction| {
        frames
            .iter()
            .filter(|f| f.direction == d)
            .map(|f| f.bytes)
            .sum::<u64>()
    };
    let (in_per_msg, out_per_msg) = (sum(Direction::In), sum(Direction::Out));
    Ok(WireBytes {
        body_bytes: body_bytes as u64,
        in_per_msg,
        out_per_msg,
        overhead_per_msg: (in_per_msg + out_per_msg).saturating_sub(2 * body_bytes as u64),
        frames,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use spine_core::envelope::MessageType;
    use spine_core::ids::{MailboxId, MessageId, WorkflowId};
    use spine_core::time::Timestamp;

    /// An envelope like the node makes for a plan's simple send.
    pub(crate) fn envelope() -> Arc<Envelope> {
        let now = Timestamp::from_micros(1_767_225_600_000_000);
        Arc::new(Envelope {
            message_id: MessageId::parse("20260101000000000000_ABCDEF").unwrap(),
            message_type: MessageType::Data,
            sender: MailboxId::parse("MB00001").unwrap(),
            recipient: MailboxId::parse("MB00002").unwrap(),
            workflow_id: WorkflowId::parse("SPINE_PLAN").unwrap(),
            subject: None,
            local_id: None,
            file_name: None,
            content_type: None,
            compressed: false,
            encrypted: false,
            checksum: None,
            partner_id: None,
            total_chunks: 1,
            created_at: now,
            expires_at: Timestamp::from_micros(now.as_micros() + 5 * 86_400 * 1_000_000),
            linked_message_id: None,
            report: None,
        })
    }

    #[test]
    fn the_body_crosses_twice_and_the_overhead_is_modest() {
        let w = wire_bytes(&envelope(), 1024).unwrap();
        assert_eq!(w.frames.len(), 7);
        assert!(w.in_per_msg > 1024 && w.out_per_msg > 1024, "{w:?}");
        assert_eq!(w.in_per_msg + w.out_per_msg - 2048, w.overhead_per_msg);
        // Headers and metadata: more than the 20-byte frame headers, far
        // less than the body.
        assert!(
            (7 * 20..1024).contains(&w.overhead_per_msg),
            "{}",
            w.overhead_per_msg
        );
        // The overhead does not depend on the body's size while the body
        // fits one download piece.
        let small = wire_bytes(&envelope(), 10).unwrap();
        assert_eq!(small.overhead_per_msg, w.overhead_per_msg);
    }

    #[test]
    fn large_bodies_download_in_pieces_each_with_a_header() {
        let piece = NetworkConfig::default().download_piece_bytes as usize;
        let one = wire_bytes(&envelope(), piece).unwrap();
        let three = wire_bytes(&envelope(), 3 * piece).unwrap();
        // Two more pieces: two more 20-byte headers plus their meta.
        assert!(three.overhead_per_msg > one.overhead_per_msg + 40);
    }
}
