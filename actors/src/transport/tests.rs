//! In-process tests of the TCP transport with the raw codec (the client
//! library and the binary are tested end to end in `tests/`).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use spine_core::directory::Directory;
use spine_core::ids::{MailboxId, WorkflowId};
use spine_core::random::SeededRandom;
use spine_core::time::{ManualClock, Timestamp};
use spine_protocol::{ClientCodec, Password, Request, Response, SendHeader, WireErrorCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{NetworkConfig, Transports};
use crate::node::{Node, NodeHandle, NodeParts, RuntimeConfig, StorageConfig};

fn mb(s: &str) -> MailboxId {
    MailboxId::parse(s).unwrap()
}

async fn node() -> NodeHandle {
    let directory = Directory::demo(&mut SeededRandom::new(1)).unwrap();
    let parts = NodeParts {
        runtime: RuntimeConfig {
            partitions: 2,
            expiry_interval_ms: 3_600_000,
            ..RuntimeConfig::default()
        },
        directory: Arc::new(directory),
        clock: Arc::new(ManualClock::new(Timestamp::from_unix_seconds(
            1_780_000_000,
        ))),
        rng: Box::new(SeededRandom::new(2)),
    };
    Node::start_in_memory(StorageConfig::default(), parts)
        .await
        .unwrap()
}

async fn serve(config: NetworkConfig) -> (NodeHandle, Transports) {
    let node = node().await;
    let t = Transports::start(node.clone(), &config).await.unwrap();
    (node, t)
}

fn local() -> NetworkConfig {
    NetworkConfig {
        native_listen: "127.0.0.1:0".into(),
        quic_enabled: false,
        ..NetworkConfig::default()
    }
}

/// A bare protocol client: one request at a time, answers read in order.
struct Raw {
    socket: TcpStream,
    codec: ClientCodec,
    buf: BytesMut,
}

impl Raw {
    async fn connect(t: &Transports) -> Raw {
        Raw {
            socket: TcpStream::connect(t.native_addr().unwrap()).await.unwrap(),
            codec: ClientCodec::default(),
            buf: BytesMut::new(),
        }
    }

    async fn write(&mut self, id: u64, request: &Request) {
        let mut out = BytesMut::new();
        self.codec.encode(id, request, &mut out).unwrap();
        self.socket.write_all(&out).await.unwrap();
    }

    async fn read(&mut self) -> Option<(u64, Response)> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buf).unwrap() {
                return Some(frame);
            }
            let n =
                tokio::time::timeout(Duration::from_secs(10), self.socket.read_buf(&mut self.buf))
                    .await
                    .expect("an answer within 10 s")
                    .unwrap();
            if n == 0 {
                return None;
            }
        }
    }

    async fn call(&mut self, id: u64, request: Request) -> Response {
        self.write(id, &request).await;
        let (got, response) = self.read().await.expect("an answer");
        assert_eq!(got, id);
        response
    }

    async fn hello(&mut self, mailbox: &str, password: &str) -> Response {
        self.call(
            1,
            Request::Hello {
                client_name: "test".into(),
                mailbox: mb(mailbox),
                password: Password::new(password),
            },
        )
        .await
    }
}

fn code_of(r: &Response) -> Option<(u16, String)> {
    match r {
        Response::Error(e) => Some((e.code, e.name.clone())),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_list_download_ack_over_tcp() {
    let (_node, t) = serve(local()).await;
    let mut a = Raw::connect(&t).await;
    assert!(matches!(
        a.hello("X26ABC1", "password").await,
        Response::HelloOk { .. }
    ));
    let header = SendHeader::simple(mb("X26ABC2"), WorkflowId::parse("WF").unwrap());
    let Response::SendOk(ok) = a
        .call(
            2,
            Request::Send {
                header,
                body: Bytes::from_static(b"hello"),
            },
        )
        .await
    else {
        panic!("send failed");
    };
    let mut b = Raw::connect(&t).await;
    assert!(matches!(
        b.hello("X26ABC2", "password").await,
        Response::HelloOk { .. }
    ));
    let Response::InboxPage {
        messages, total, ..
    } = b
        .call(
            2,
            Request::ListInbox {
                workflow_filter: None,
                max_results: 10,
                after: None,
            },
        )
        .await
    else {
        panic!("list failed");
    };
    assert_eq!(total, 1);
    assert_eq!(messages[0].message_id, ok.message_id);
    let Response::DownloadData(d) = b
        .call(
            3,
            Request::Download {
                message_id: ok.message_id,
                chunk_no: 1,
            },
        )
        .await
    else {
        panic!("download failed");
    };
    assert_eq!(&d.body[..], b"hello");
    assert!(d.is_end());
    // The sender may not download or acknowledge the recipient's message.
    let r = a
        .call(
            3,
            Request::Acknowledge {
                message_id: ok.message_id,
            },
        )
        .await;
    assert_eq!(code_of(&r).unwrap().0, WireErrorCode::Forbidden as u16);
    assert!(matches!(
        b.call(
            4,
            Request::Acknowledge {
                message_id: ok.message_id
            }
        )
        .await,
        Response::AckOk
    ));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_and_bad_passwords_are_refused() {
    let (_node, t) = serve(local()).await;
    let mut c = Raw::connect(&t).await;
    assert!(matches!(c.call(5, Request::Ping).await, Response::Pong));
    let r = c
        .call(
            6,
            Request::ListInbox {
                workflow_filter: None,
                max_results: 1,
                after: None,
            },
        )
        .await;
    assert_eq!(
        code_of(&r).unwrap().0,
        WireErrorCode::NotAuthenticated as u16
    );
    for _ in 0..super::connection::MAX_FAILED_HELLOS {
        let r = c.hello("X26ABC1", "wrong").await;
        assert_eq!(code_of(&r).unwrap().0, WireErrorCode::AuthFailed as u16);
    }
    // Closed after repeated failures.
    assert!(c.read().await.is_none());
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_an_error_frame_and_a_close() {
    let (_node, t) = serve(local()).await;
    let mut c = Raw::connect(&t).await;
    // A length prefix far over the limit is unframeable: fatal.
    c.socket
        .write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4])
        .await
        .unwrap();
    let (id, r) = c.read().await.expect("an error frame");
    assert_eq!(id, 0);
    assert_eq!(code_of(&r).unwrap().0, WireErrorCode::FrameTooLarge as u16);
    assert!(c.read().await.is_none(), "the connection closes");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_told_busy() {
    let (_node, t) = serve(NetworkConfig {
        max_connections: 1,
        ..local()
    })
    .await;
    let mut first = Raw::connect(&t).await;
    assert!(matches!(first.call(1, Request::Ping).await, Response::Pong));
    let mut second = Raw::connect(&t).await;
    let (id, r) = second.read().await.expect("a BUSY frame");
    assert_eq!(id, 0);
    assert_eq!(code_of(&r).unwrap().0, WireErrorCode::Busy as u16);
    t.stop().await;
}
