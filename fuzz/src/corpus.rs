//! The seed corpora, built from the real encoders and the real fixtures:
//! frames from the codecs, envelopes from `to_rkyv_bytes`, the header sets
//! mesh-client 5.x sends, tokens from `make_token`, and the demo
//! directory in both file forms. `examples/make_corpus.rs` writes them to
//! `corpus/<target>/`; `tests/replay.rs` checks the committed files match.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use spine_core::directory::{Credential, DEMO_MAILBOXES_JSONL, DEMO_WORKFLOWS_JSONL};
use spine_core::envelope::{Envelope, MessageType, ReportStatus};
use spine_core::ids::{LocalId, MailboxId, MessageId, OdsCode, WorkflowId};
use spine_core::message::{MessageStatus, SendHeader};
use spine_core::random::SeededRandom;
use spine_core::time::Timestamp;
use spine_protocol::mesh::auth::{make_token, DEFAULT_SHARED_KEY};
use spine_protocol::{
    split_download, BatchItem, ClientCodec, InboxEntry, Limits, LookupEntry, Password, Request,
    Response, SendOk, ServerCodec, TrackInfo, WireError, WireErrorCode,
};

use crate::frame_codec::{small_limits, Control};

/// One seed file: target, file name, contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// The fuzz target (a directory under `corpus/`).
    pub target: &'static str,
    /// The file name.
    pub name: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// Every seed of every target, in a fixed order.
pub fn all() -> Vec<Seed> {
    let mut out = Vec::new();
    out.extend(frame_codec());
    out.extend(envelope());
    out.extend(mesh_headers());
    out.extend(nhsmesh_token());
    out.extend(directory());
    out
}

fn seed(target: &'static str, name: impl Into<String>, data: impl Into<Vec<u8>>) -> Seed {
    Seed {
        target,
        name: name.into(),
        data: data.into(),
    }
}

fn mailbox(s: &str) -> MailboxId {
    MailboxId::parse(s).expect("valid mailbox id")
}

fn workflow(s: &str) -> WorkflowId {
    WorkflowId::parse(s).expect("valid workflow id")
}

fn message_id(s: &str) -> MessageId {
    MessageId::parse(s).expect("valid message id")
}

const MESSAGE_ID: &str = "20261124003609123456_ABCDEF";
const OTHER_ID: &str = "20261124003610000001_000001";

fn created_at() -> Timestamp {
    Timestamp::from_micros(1_795_480_569_123_456)
}

/// A DATA envelope with every optional field set.
pub fn data_envelope() -> Envelope {
    Envelope {
        message_id: message_id(MESSAGE_ID),
        message_type: MessageType::Data,
        sender: mailbox("X26ABC1"),
        recipient: mailbox("X26ABC2"),
        workflow_id: workflow("TEST_WORKFLOW"),
        subject: Some("Lab results".into()),
        local_id: Some(LocalId::parse("ref-1").expect("valid local id")),
        file_name: Some("results.csv".into()),
        content_type: Some("text/csv".into()),
        compressed: true,
        encrypted: true,
        checksum: Some("md5:0123abcd".into()),
        partner_id: Some("partner|1".into()),
        total_chunks: 3,
        created_at: created_at(),
        expires_at: created_at().saturating_add(Duration::from_secs(5 * 86_400)),
        linked_message_id: None,
        report: None,
    }
}

/// A DATA envelope with nothing optional.
pub fn minimal_envelope() -> Envelope {
    Envelope {
        subject: None,
        local_id: None,
        file_name: None,
        content_type: None,
        compressed: false,
        encrypted: false,
        checksum: None,
        partner_id: None,
        total_chunks: 1,
        ..data_envelope()
    }
}

/// The non-delivery report of [`data_envelope`].
pub fn report_envelope() -> Envelope {
    let original = data_envelope();
    Envelope {
        message_id: message_id(OTHER_ID),
        message_type: MessageType::Report,
        sender: mailbox("X26ABC2"),
        recipient: mailbox("X26ABC1"),
        subject: None,
        file_name: None,
        content_type: None,
        checksum: None,
        partner_id: None,
        compressed: false,
        encrypted: false,
        total_chunks: 0,
        linked_message_id: Some(original.message_id),
        report: Some(ReportStatus {
            code: "14".into(),
            event: "SEND".into(),
            description: "Message not collected by recipient after 5 days".into(),
        }),
        ..original
    }
}

/// Non-ASCII text at the field limits' edges.
pub fn unicode_envelope() -> Envelope {
    Envelope {
        subject: Some("Résultats — Ωμέγα ✓ 🩺".into()),
        file_name: Some("naïve file.txt".into()),
        partner_id: Some("x".repeat(500)),
        ..minimal_envelope()
    }
}

fn envelopes() -> Vec<(&'static str, Envelope)> {
    vec![
        ("data_full", data_envelope()),
        ("data_minimal", minimal_envelope()),
        ("report", report_envelope()),
        ("data_unicode", unicode_envelope()),
    ]
}

fn envelope() -> Vec<Seed> {
    envelopes()
        .into_iter()
        .map(|(name, e)| {
            let bytes = e.to_rkyv_bytes().expect("the seed envelopes are valid");
            seed("envelope", format!("{name}.rkyv"), bytes)
        })
        .collect()
}

fn full_header() -> SendHeader {
    SendHeader {
        recipient: mailbox("X26ABC2"),
        workflow_id: workflow("TEST_WORKFLOW"),
        subject: Some("Lab results".into()),
        local_id: Some(LocalId::parse("ref-1").expect("valid local id")),
        file_name: Some("results.csv".into()),
        content_type: Some("text/csv".into()),
        compressed: false,
        encrypted: true,
        checksum: Some("md5:0123abcd".into()),
        partner_id: None,
        total_chunks: 1,
        idempotency_key: Some("key-1".into()),
    }
}

fn requests() -> Vec<(&'static str, u64, Request)> {
    let chunked = SendHeader {
        total_chunks: 3,
        ..full_header()
    };
    vec![
        (
            "hello",
            1,
            Request::Hello {
                client_name: "spine-client 0.1".into(),
                mailbox: mailbox("X26ABC1"),
                password: Password::new("password"),
            },
        ),
        (
            "send",
            2,
            Request::Send {
                header: full_header(),
                body: Bytes::from_static(b"hello, world"),
            },
        ),
        (
            "send_simple",
            3,
            Request::Send {
                header: SendHeader::simple(mailbox("X26ABC2"), workflow("TEST_WORKFLOW")),
                body: Bytes::new(),
            },
        ),
        (
            "send_chunk1",
            4,
            Request::Send {
                header: chunked,
                body: Bytes::from_static(b"chunk one"),
            },
        ),
        (
            "send_batch",
            5,
            Request::SendBatch(vec![
                BatchItem {
                    header: SendHeader::simple(mailbox("X26ABC2"), workflow("TEST_WORKFLOW")),
                    body: Bytes::from_static(b"first"),
                },
                BatchItem {
                    header: full_header(),
                    body: Bytes::from_static(b"second body"),
                },
            ]),
        ),
        (
            "send_chunk",
            6,
            Request::SendChunk {
                message_id: message_id(MESSAGE_ID),
                chunk_no: 2,
                body: Bytes::from_static(b"chunk two"),
            },
        ),
        (
            "list_inbox",
            7,
            Request::ListInbox {
                workflow_filter: Some("TEST_*".into()),
                max_results: 100,
                after: Some(41),
            },
        ),
        (
            "list_inbox_first",
            8,
            Request::ListInbox {
                workflow_filter: None,
                max_results: 1,
                after: None,
            },
        ),
        (
            "download",
            9,
            Request::Download {
                message_id: message_id(MESSAGE_ID),
                chunk_no: 1,
            },
        ),
        (
            "acknowledge",
            10,
            Request::Acknowledge {
                message_id: message_id(MESSAGE_ID),
            },
        ),
        (
            "acknowledge_batch",
            18,
            Request::AcknowledgeBatch {
                message_ids: vec![message_id(MESSAGE_ID), message_id(MESSAGE_ID)],
            },
        ),
        (
            "track",
            11,
            Request::Track {
                message_id: message_id(MESSAGE_ID),
            },
        ),
        (
            "lookup",
            12,
            Request::Lookup {
                ods_code: Some(OdsCode::parse("X26").expect("valid ods code")),
                workflow_id: workflow("TEST_WORKFLOW"),
            },
        ),
        (
            "lookup_any",
            13,
            Request::Lookup {
                ods_code: None,
                workflow_id: workflow("TEST_WORKFLOW"),
            },
        ),
        (
            "subscribe",
            14,
            Request::Subscribe {
                credit: 4,
                inline: true,
            },
        ),
        ("credit", 15, Request::Credit { add: 2 }),
        ("unsubscribe", 16, Request::Unsubscribe),
        ("ping", u64::MAX, Request::Ping),
    ]
}

fn responses() -> Vec<(&'static str, u64, Response)> {
    let data = Arc::new(data_envelope());
    let send_ok = SendOk {
        message_id: message_id(MESSAGE_ID),
        duplicate: false,
        status: MessageStatus::Accepted,
    };
    let mut out = vec![
        (
            "hello_ok",
            1,
            Response::HelloOk {
                mailbox: mailbox("X26ABC1"),
                server_name: "spine 0.1.0".into(),
                limits: Limits::default().advertise(),
            },
        ),
        ("send_ok", 2, Response::SendOk(send_ok.clone())),
        (
            "send_batch_ok",
            5,
            Response::SendBatchOk(vec![
                Ok(SendOk {
                    duplicate: true,
                    status: MessageStatus::Uploading,
                    ..send_ok.clone()
                }),
                Err(WireError::new(
                    WireErrorCode::DeliveryRefused,
                    "DIR_RECIPIENT_UNREGISTERED",
                    "recipient X26ZZZ9 is not registered",
                )),
            ]),
        ),
        ("chunk_ok", 6, Response::ChunkOk { complete: true }),
        (
            "inbox_page",
            7,
            Response::InboxPage {
                messages: vec![
                    InboxEntry::from_envelope(&data, 41),
                    InboxEntry::from_envelope(&report_envelope(), 42),
                ],
                next: Some(42),
                total: 7,
            },
        ),
        ("ack_ok", 10, Response::AckOk),
        (
            "track_info",
            11,
            Response::TrackInfo(TrackInfo {
                envelope: data.clone(),
                status: MessageStatus::Acknowledged,
                order: Some(41),
                chunks_received: 3,
                acknowledged_at: Some(created_at().saturating_add(Duration::from_secs(60))),
                expired_at: None,
            }),
        ),
        (
            "ack_batch_ok",
            18,
            Response::AckBatchOk(vec![
                Ok(()),
                Err(WireError::new(
                    WireErrorCode::NotFound,
                    "MSG_NOT_FOUND",
                    "no such message",
                )),
            ]),
        ),
        (
            "lookup_result",
            12,
            Response::LookupResult(vec![LookupEntry {
                mailbox_id: mailbox("X26ABC2"),
                mailbox_name: "TESTMB2".into(),
                ods_code: OdsCode::parse("X26").expect("valid ods code"),
            }]),
        ),
        ("subscribed", 14, Response::Subscribed { credit: 4 }),
        ("unsubscribed", 16, Response::Unsubscribed),
        ("pong", 17, Response::Pong),
        (
            "push",
            0,
            Response::Push {
                envelope: data.clone(),
                order: 43,
                body: Some(Bytes::from_static(b"inline")),
            },
        ),
        (
            "error",
            9,
            Response::Error(WireError::new(
                WireErrorCode::NotFound,
                "STORE_NOT_FOUND",
                "message 20261124003609123456_ABCDEF is not in this inbox",
            )),
        ),
    ];
    for (i, piece) in
        split_download(data, 1, Bytes::from_static(b"0123456789abcdef"), 6).enumerate()
    {
        let name = ["download_first", "download_middle", "download_last"][i.min(2)];
        out.push((name, 9, piece));
    }
    out
}

fn framed(control: Control, seed_byte: u8, body: &[u8]) -> Vec<u8> {
    let mut data = vec![control.to_byte(), seed_byte];
    data.extend_from_slice(body);
    data
}

fn frame_codec() -> Vec<Seed> {
    let client = ClientCodec::default();
    let server = ServerCodec::default();
    let mut out = Vec::new();
    let whole = |client_side: bool| Control {
        client: client_side,
        small: false,
        max_piece: 1024,
    };
    let mut all_requests = BytesMut::new();
    for (name, id, request) in requests() {
        let mut wire = BytesMut::new();
        client
            .encode(id, &request, &mut wire)
            .expect("the seed requests encode");
        all_requests.extend_from_slice(&wire);
        out.push(seed(
            "frame_codec",
            format!("request_{name}.bin"),
            framed(whole(false), 0, &wire),
        ));
    }
    let mut all_responses = BytesMut::new();
    for (name, id, response) in responses() {
        let mut wire = BytesMut::new();
        server
            .encode(id, &response, &mut wire)
            .expect("the seed responses encode");
        all_responses.extend_from_slice(&wire);
        out.push(seed(
            "frame_codec",
            format!("response_{name}.bin"),
            framed(whole(true), 0, &wire),
        ));
    }
    // Whole pipelines, cut into small reads, and under the small limits
    // (where the larger frames are refused as too large).
    for (side, stream) in [(false, &all_requests), (true, &all_responses)] {
        let who = if side { "responses" } else { "requests" };
        for (max_piece, small, seed_byte) in [(3, false, 7), (1, false, 0), (16, true, 42)] {
            let control = Control {
                client: side,
                small,
                max_piece,
            };
            let limits = if small { "_small_limits" } else { "" };
            out.push(seed(
                "frame_codec",
                format!("pipeline_{who}_pieces{max_piece}{limits}.bin"),
                framed(control, seed_byte, stream),
            ));
        }
    }
    // Non-fatal refusals followed by a good frame: an unknown kind, and a
    // known kind with undefined flag bits; then a response sent to a server.
    let mut ping = BytesMut::new();
    client
        .encode(2, &Request::Ping, &mut ping)
        .expect("ping encodes");
    let mut unknown = ping.to_vec();
    unknown[5] = 0x42;
    unknown.extend_from_slice(&ping);
    out.push(seed(
        "frame_codec",
        "unknown_kind_then_ping.bin",
        framed(whole(false), 0, &unknown),
    ));
    let mut flags = ping.to_vec();
    flags[7] = 0x80;
    flags.extend_from_slice(&ping);
    out.push(seed(
        "frame_codec",
        "bad_flags_then_ping.bin",
        framed(whole(false), 0, &flags),
    ));
    let mut pong = BytesMut::new();
    server
        .encode(2, &Response::Pong, &mut pong)
        .expect("pong encodes");
    let mut wrong_way = pong.to_vec();
    wrong_way.extend_from_slice(&ping);
    out.push(seed(
        "frame_codec",
        "response_to_server_then_ping.bin",
        framed(whole(false), 0, &wrong_way),
    ));
    // Fatal ones: a bad version byte, and a length over the small limit.
    let mut version = ping.to_vec();
    version[4] = 2;
    out.push(seed(
        "frame_codec",
        "bad_version.bin",
        framed(whole(false), 0, &version),
    ));
    let too_long =
        (u32::try_from(small_limits().max_frame_length()).unwrap_or(u32::MAX) + 1).to_be_bytes();
    out.push(seed(
        "frame_codec",
        "too_long_small_limits.bin",
        framed(
            Control {
                client: false,
                small: true,
                max_piece: 1,
            },
            0,
            &too_long,
        ),
    ));
    out
}

/// What mesh-client 5.x sends on every request (`requests.Session`
/// headers plus its token).
fn mesh_client_common(token: &str) -> String {
    format!(
        "Accept: application/vnd.mesh.v2+json\r\n\
         User-Agent: mesh_client;5.0.2;N/A;x86_64;Linux;6.1.0 #1 SMP\r\n\
         Accept-Encoding: gzip\r\n\
         Connection: keep-alive\r\n\
         Authorization: {token}\r\n"
    )
}

fn token(count: u64) -> String {
    make_token(
        "X26ABC1",
        "password",
        DEFAULT_SHARED_KEY.as_bytes(),
        "6f1e4b5a-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
        count,
        Timestamp::parse_seconds("20261124060000").expect("valid time"),
    )
}

fn mesh_headers() -> Vec<Seed> {
    let mb = "/messageexchange/X26ABC1";
    let common = |n| mesh_client_common(&token(n));
    let requests: Vec<(&str, String)> = vec![
        (
            "mesh_client_handshake",
            format!(
                "POST {mb} HTTP/1.1\r\n{}mex-ClientVersion: mesh_client==5.0.2\r\n\
                 mex-OSArchitecture: x86_64\r\nmex-OSName: Linux\r\n\
                 mex-OSVersion: 6.1.0 #1 SMP\r\nmex-JavaVersion: N/A\r\nContent-Length: 0\r\n",
                common(0)
            ),
        ),
        (
            "mesh_client_send",
            format!(
                "POST {mb}/outbox HTTP/1.1\r\n{}Content-Type: application/octet-stream\r\n\
                 Mex-Chunk-Range: 1:1\r\nMex-To: X26ABC2\r\nMex-WorkflowID: TEST_WORKFLOW\r\n\
                 Mex-Subject: Lab results\r\nMex-LocalID: ref-1\r\nMex-FileName: results.csv\r\n\
                 Mex-Content-Encrypted: Y\r\nMex-Content-Compressed: N\r\n\
                 Mex-Content-Checksum: md5:0123abcd\r\nMex-PartnerID: partner|1\r\n\
                 Mex-Content-Type: text/csv\r\nContent-Length: 12\r\n",
                common(1)
            ),
        ),
        (
            "mesh_client_send_chunk1_gzip",
            format!(
                "POST {mb}/outbox HTTP/1.1\r\n{}Content-Type: application/octet-stream\r\n\
                 Mex-Chunk-Range: 1:3\r\nMex-To: x26abc2\r\nMex-WorkflowID: TEST_WORKFLOW\r\n\
                 Mex-Content-Type: text/plain\r\nContent-Encoding: gzip\r\n",
                common(2)
            ),
        ),
        (
            "mesh_client_upload_chunk2",
            format!(
                "POST {mb}/outbox/{MESSAGE_ID}/2 HTTP/1.1\r\n{}\
                 Content-Type: application/octet-stream\r\nMex-Chunk-Range: 2:3\r\n\
                 Content-Encoding: gzip\r\n",
                common(3)
            ),
        ),
        (
            "spine_send_idempotent",
            format!(
                "POST {mb}/outbox HTTP/1.1\r\nAccept: application/json\r\n\
                 Mex-To: X26ABC2\r\nMex-WorkflowID: TEST_WORKFLOW\r\n\
                 Mex-Idempotency-Key: order-2026-11-24-0001\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n"
            ),
        ),
        (
            "mesh_client_list_inbox",
            format!(
                "GET {mb}/inbox?max_results=500&workflow_filter=TEST_WORKFLOW HTTP/1.1\r\n{}",
                common(4)
            ),
        ),
        (
            "mesh_client_list_inbox_continue",
            format!(
                "GET {mb}/inbox?continue_from=eyJvcmRlciI6IDQxfQ%3D%3D HTTP/1.1\r\n{}",
                common(5)
            ),
        ),
        (
            "mesh_client_count",
            format!("GET {mb}/count HTTP/1.1\r\n{}", common(6)),
        ),
        (
            "mesh_client_download",
            format!("GET {mb}/inbox/{MESSAGE_ID} HTTP/1.1\r\n{}", common(7)),
        ),
        (
            "mesh_client_download_chunk",
            format!("GET {mb}/inbox/{MESSAGE_ID}/2 HTTP/1.1\r\n{}", common(8)),
        ),
        (
            "head_download",
            format!(
                "HEAD {mb}/inbox/{MESSAGE_ID} HTTP/1.1\r\nAccept: application/vnd.mesh.v1+json\r\n"
            ),
        ),
        (
            "mesh_client_acknowledge",
            format!(
                "PUT {mb}/inbox/{MESSAGE_ID}/status/acknowledged HTTP/1.1\r\n{}Content-Length: 0\r\n",
                common(9)
            ),
        ),
        (
            "mesh_client_track",
            format!(
                "GET {mb}/outbox/tracking?messageID={MESSAGE_ID} HTTP/1.1\r\n{}",
                common(10)
            ),
        ),
        (
            "track_by_local_id_v1",
            format!("GET {mb}/outbox/tracking/ref%201 HTTP/1.1\r\nAccept: */*\r\n"),
        ),
        (
            "mesh_client_endpointlookup",
            format!(
                "GET /messageexchange/endpointlookup/X26/TEST_WORKFLOW HTTP/1.1\r\n{}",
                common(11)
            ),
        ),
        (
            "workflowsearch",
            "GET /messageexchange/workflowsearch/TEST_WORKFLOW HTTP/1.1\r\nAccept: application/vnd.mesh.v2+json;q=0.9, */*\r\n".to_string(),
        ),
        (
            "ping",
            "GET /messageexchange/_ping HTTP/1.1\r\n".to_string(),
        ),
        (
            "sandbox_reset_mailbox",
            "DELETE /messageexchange/admin/reset/X26ABC1 HTTP/1.1\r\n".to_string(),
        ),
        (
            "sandbox_report",
            "POST /admin/report HTTP/1.1\r\nContent-Type: application/json\r\n".to_string(),
        ),
        (
            "refused_url_and_range",
            format!(
                "POST {mb}/outbox HTTP/1.1\r\nMex-To: https://evil.example/\r\n\
                 Mex-WorkflowID: W\r\nMex-Chunk-Range: 0:3\r\nContent-Encoding: br\r\n\
                 Accept: application/vnd.mesh.v3+json\r\n"
            ),
        ),
    ];
    requests
        .into_iter()
        .map(|(name, text)| seed("mesh_headers", format!("{name}.http"), text))
        .collect()
}

fn nhsmesh_token() -> Vec<Seed> {
    let now = Timestamp::parse_seconds("20261124060000").expect("valid time");
    let key = DEFAULT_SHARED_KEY.as_bytes();
    let nonce = "6f1e4b5a-2c3d-4e5f-8a9b-0c1d2e3f4a5b";
    let mesh_client = make_token("X26ABC1", "password", key, nonce, 0, now);
    let (head, hash) = mesh_client.rsplit_once(':').expect("a token has colons");
    let shouted = format!(
        "{}:{}",
        head.replace("NHSMESH", "nhsmesh"),
        hash.to_uppercase()
    );
    let bare = mesh_client
        .strip_prefix("NHSMESH ")
        .expect("a token starts with its scheme")
        .to_string();
    vec![
        seed("nhsmesh_token", "mesh_client.txt", mesh_client),
        seed(
            "nhsmesh_token",
            "mesh_client_count_41.txt",
            make_token("x26abc2", "password", key, nonce, 41, now),
        ),
        seed(
            "nhsmesh_token",
            "known_answer.txt",
            "NHSMESH X26ABC1:abc:0:202611240600:\
             fad919dc80df0de77f5d07ff5a75d740288e46eaabe490f18c7de422801d2fa1",
        ),
        seed("nhsmesh_token", "upper_case_hex.txt", shouted),
        seed("nhsmesh_token", "no_scheme.txt", bare),
        seed(
            "nhsmesh_token",
            "other_key.txt",
            make_token("X26ABC3", "s3cret!", b"TestKey", "n", 9_999_999_999, now),
        ),
        seed(
            "nhsmesh_token",
            "make_parts.txt",
            format!("X26ABC1\n{nonce}\npassword\nBackBone\n3\n20261124060000"),
        ),
        seed(
            "nhsmesh_token",
            "make_parts_odd.txt",
            "~!mailbox\nn\u{e9}\npass:word with spaces\n\n18446744073709551615\n99991231235959",
        ),
    ]
}

/// The demo directory in the native TOML form, as written by hand (with
/// comments and a password hash).
fn demo_toml() -> String {
    let hash = Credential::from_password("password", &mut SeededRandom::new(7), 1)
        .expect("a password hashes")
        .to_hash_string();
    format!(
        "# The demo directory (mesh-sandbox's test mailboxes) in Spine's TOML form.\n\
         [[mailbox]]\n\
         id = \"X26ABC1\"\n\
         name = \"TESTMB1\"\n\
         ods_code = \"X26\"\n\
         org_code = \"X26\"\n\
         billing_entity = \"England\"\n\
         password = \"password\"\n\
         \n\
         [[mailbox]]\n\
         id = \"X26ABC2\"\n\
         name = \"TESTMB2\"\n\
         ods_code = \"X26\"\n\
         org_code = \"X26\"\n\
         org_name = \"Test org\"\n\
         billing_entity = \"England\"\n\
         active = true\n\
         password_hash = \"{hash}\"\n\
         \n\
         [[mailbox]]\n\
         id = \"X26ABC3\"\n\
         name = \"TESTMB3\"\n\
         ods_code = \"X27\"\n\
         active = false\n\
         password = \"password\"\n\
         \n\
         [[workflow]]\n\
         id = \"TEST_WORKFLOW\"\n\
         senders = [\"X26ABC1\"]\n\
         receivers = [\"X26ABC2\"]\n\
         \n\
         [[workflow]]\n\
         id = \"TEST_WORKFLOW_ACK\"\n\
         senders = [\"X26ABC2\"]\n\
         receivers = [\"X26ABC1\", \"X26ABC3\"]\n"
    )
}

fn directory() -> Vec<Seed> {
    let jsonl = |m: &str, w: &str| format!("{m}\0{w}");
    let hash = Credential::from_password("password", &mut SeededRandom::new(7), 1)
        .expect("a password hashes")
        .to_hash_string();
    let extended = format!(
        "\u{feff}{{\"mailbox_id\": \" x26abc1 \", \"mailbox_name\": \"TESTMB1\", \"ods_code\": \"X26\", \"org_code\": null, \"org_name\": \"\", \"password\": \"password\", \"extra\": [1, {{}}]}}\r\n\
         \r\n\
         {{\"mailbox_id\": \"X26ABC2\", \"mailbox_name\": \"TESTMB2\", \"ods_code\": \"X26\", \"active\": false, \"password_hash\": \"{hash}\"}}\n"
    );
    vec![
        seed(
            "directory",
            "demo.jsonl",
            jsonl(DEMO_MAILBOXES_JSONL, DEMO_WORKFLOWS_JSONL),
        ),
        seed("directory", "demo.toml", demo_toml()),
        seed(
            "directory",
            "extended.jsonl",
            jsonl(
                &extended,
                "{\"workflow_id\": \"WF\", \"senders\": [\"X26ABC1\"], \"receivers\": [\" X26ABC2\", \"X26ABC1\"]}\n",
            ),
        ),
        seed(
            "directory",
            "refused_unknown_receiver.jsonl",
            jsonl(
                DEMO_MAILBOXES_JSONL,
                "{\"workflow_id\": \"WF\", \"senders\": [\"X26ABC1\"], \"receivers\": [\"NOPE\"]}\n",
            ),
        ),
        seed(
            "directory",
            "refused_typo.toml",
            "[[mailbox]]\nid = \"X26ABC1\"\nname = \"A\"\nods_code = \"X26\"\npasword = \"x\"\n",
        ),
    ]
}
