//! The client over plain TCP against the fake server.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use spine_core::ErrorCode;
use spine_protocol::BatchItem;

use super::fake::{
    body, bounded, config, envelope, eventually, header, message_id, start_tcp, workflow, Script,
    Stats, BODY_LEN, SERVER_NAME,
};
use crate::{Client, ClientError};

async fn client_for(script: Script) -> (Client, super::fake::FakeServer) {
    client_coalescing(script, crate::DEFAULT_COALESCE_SENDS).await
}

/// `n` sends with empty bodies from as many tasks; each must succeed.
async fn send_concurrently(client: &Client, n: u32) {
    let tasks: Vec<_> = (0..n)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move { client.send(header(n), Bytes::new()).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

/// A client that sends every message in its own `SEND`.
async fn client_without_coalescing(script: Script) -> (Client, super::fake::FakeServer) {
    client_coalescing(script, 1).await
}

async fn client_coalescing(
    script: Script,
    coalesce_sends: usize,
) -> (Client, super::fake::FakeServer) {
    let server = start_tcp(script, None).await;
    let mut c = config(server.endpoint("native"));
    c.coalesce_sends = coalesce_sends;
    let client = Client::connect(c).await.unwrap();
    (client, server)
}

#[tokio::test]
async fn hello_ok_exposes_the_session() {
    bounded(async {
        let (client, server) = client_for(Script::default()).await;
        let session = client.session();
        assert_eq!(session.mailbox.as_str(), "X26ABC1");
        assert_eq!(session.server_name, SERVER_NAME);
        assert_eq!(session.limits.max_batch, 1_024);
        assert_eq!(Stats::get(&server.stats.hellos), 1);
        assert!(client.ping().await.unwrap() < Duration::from_secs(5));
        assert!(format!("{client:?}").contains("X26ABC1"));
    })
    .await;
}

#[tokio::test]
async fn a_refused_hello_surfaces_auth_failed() {
    bounded(async {
        let server = start_tcp(Script::default(), None).await;
        let mut c = config(server.endpoint("native"));
        c.password = "wrong".into();
        let e = Client::connect(c).await.unwrap_err();
        assert!(matches!(e, ClientError::Server(_)), "{e:?}");
        assert_eq!(e.code(), "AUTH_FAILED");
        assert_eq!(e.name(), "DIR_AUTH_FAILED");
        assert_eq!(e.wire_code(), Some(2000));
        assert!(
            e.to_string().contains("mailbox or password is wrong"),
            "{e}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sends_from_clones_are_matched_by_id() {
    bounded(async {
        // Answers come back in groups of 8, newest first.
        let (client, server) = client_without_coalescing(Script {
            hold_sends: 8,
            ..Script::default()
        })
        .await;
        let tasks: Vec<_> = (0..64u32)
            .map(|n| {
                let client = client.clone();
                tokio::spawn(async move {
                    let ok = client
                        .send(header(n), Bytes::from_static(b"body"))
                        .await
                        .unwrap();
                    (n, ok)
                })
            })
            .collect();
        for task in tasks {
            let (n, ok) = task.await.unwrap();
            assert_eq!(
                ok.message_id,
                message_id(n),
                "send {n} got another's answer"
            );
        }
        assert_eq!(Stats::get(&server.stats.sends), 64);
        assert_eq!(Stats::get(&server.stats.max_held), 8);
        assert_eq!(Stats::get(&server.stats.connections), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipelining_window_bounds_requests_in_flight() {
    bounded(async {
        // The server holds every answer until the client goes quiet, so it
        // sees as many requests at once as the client lets through.
        let server = start_tcp(
            Script {
                hold_sends: usize::MAX,
                flush_idle: Some(Duration::from_millis(50)),
                ..Script::default()
            },
            None,
        )
        .await;
        let mut c = config(server.endpoint("native"));
        c.max_in_flight = 4;
        c.coalesce_sends = 1;
        let client = Client::connect(c).await.unwrap();
        send_concurrently(&client, 20).await;
        assert_eq!(Stats::get(&server.stats.sends), 20);
        let max_held = Stats::get(&server.stats.max_held);
        assert!((1..=4).contains(&max_held), "{max_held} requests in flight");
    })
    .await;
}

/// 64 sends from concurrent tasks on a current-thread runtime: all are
/// queued before the writer runs, so they share `SEND_BATCH` frames; each
/// caller still gets its own message id, and a refused item fails only
/// its own caller.
#[tokio::test]
async fn concurrent_sends_are_coalesced_and_each_caller_gets_its_own_answer() {
    bounded(async {
        let (client, server) = client_for(Script::default()).await;
        let tasks: Vec<_> = (0..64u32)
            .map(|n| {
                let client = client.clone();
                let mut h = header(n);
                if n == 13 {
                    h.subject = Some("bad".into());
                }
                tokio::spawn(async move { (n, client.send(h, Bytes::from_static(b"b")).await) })
            })
            .collect();
        for task in tasks {
            match task.await.unwrap() {
                (13, Err(ClientError::Server(e))) => {
                    assert_eq!(e.name, "DIR_RECIPIENT_UNREGISTERED");
                }
                (13, other) => panic!("the refused send got {other:?}"),
                (n, Ok(ok)) => assert_eq!(ok.message_id, message_id(n), "send {n}"),
                (n, Err(e)) => panic!("send {n} failed: {e}"),
            }
        }
        let singles = Stats::get(&server.stats.sends);
        let batches = Stats::get(&server.stats.batches);
        assert_eq!(singles + Stats::get(&server.stats.batch_items), 64);
        assert!(batches >= 1, "no SEND_BATCH");
        assert!(
            singles + batches <= 8,
            "64 queued sends took {singles} SENDs and {batches} SEND_BATCHes"
        );

        // A lone send is a plain SEND.
        let before = Stats::get(&server.stats.sends);
        client
            .send(header(99), Bytes::from_static(b"b"))
            .await
            .unwrap();
        assert_eq!(Stats::get(&server.stats.sends), before + 1);
    })
    .await;
}

#[tokio::test]
async fn coalescing_off_sends_each_message_alone() {
    bounded(async {
        let (client, server) = client_without_coalescing(Script::default()).await;
        send_concurrently(&client, 16).await;
        assert_eq!(Stats::get(&server.stats.sends), 16);
        assert_eq!(Stats::get(&server.stats.batches), 0);
    })
    .await;
}

#[tokio::test]
async fn batch_results_come_in_item_order() {
    bounded(async {
        let (client, _server) = client_for(Script::default()).await;
        let item = |subject: &str| {
            let mut h = header(0);
            h.subject = Some(subject.into());
            BatchItem {
                header: h,
                body: Bytes::from_static(b"x"),
            }
        };
        let results = client
            .send_batch(vec![item("a"), item("bad"), item("c")])
            .await
            .unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].as_ref().unwrap().message_id, message_id(0));
        assert_eq!(
            results[1].as_ref().unwrap_err().name,
            "DIR_RECIPIENT_UNREGISTERED"
        );
        assert_eq!(results[2].as_ref().unwrap().message_id, message_id(2));

        let e = client.send_batch(vec![]).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_REQUEST_INVALID", "{e}");
    })
    .await;
}

#[tokio::test]
async fn every_request_kind_round_trips() {
    bounded(async {
        let (client, _server) = client_for(Script::default()).await;
        let page = client
            .list_inbox(Some("PATH".into()), 10, None)
            .await
            .unwrap();
        assert_eq!(page.total, 1);
        assert_eq!(page.next, None);
        assert_eq!(page.messages[0].message_id, envelope().message_id);
        assert_eq!(page.messages[0].order, 5);

        assert!(!client
            .send_chunk(message_id(1), 2, Bytes::new())
            .await
            .unwrap());
        assert!(client
            .send_chunk(message_id(1), 3, Bytes::new())
            .await
            .unwrap());
        client.acknowledge(message_id(1)).await.unwrap();

        let info = client.track(message_id(1)).await.unwrap();
        assert_eq!(info.envelope, envelope());
        assert_eq!(info.order, Some(5));

        let found = client.lookup(None, workflow("PATH_TEST")).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].mailbox_name, "Receives PATH_TEST");

        // Invalid requests are refused before anything is sent.
        let e = client.list_inbox(None, 0, None).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_REQUEST_INVALID");
        assert!(e.to_string().contains("max_results"), "{e}");
        client.ping().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn streamed_downloads_are_reassembled_within_the_bound() {
    bounded(async {
        // 100 bytes in 7-byte pieces: 15 DOWNLOAD_DATA frames.
        let (client, server) = client_for(Script::default()).await;
        let (a, b) = tokio::join!(
            client.download(message_id(1), 1),
            client.download(message_id(1), 2)
        );
        for (chunk, n) in [(a.unwrap(), 1), (b.unwrap(), 2)] {
            assert_eq!(chunk.body, body());
            assert_eq!(chunk.chunk_no, n);
            assert_eq!(chunk.envelope, envelope());
        }

        let small = Client::connect(config(server.endpoint("native")))
            .await
            .unwrap();
        let e = small
            .download_bounded(message_id(1), 1, (BODY_LEN - 1) as u64)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "CLIENT_PROTOCOL", "{e}");
        assert!(e.to_string().contains("over this client's limit"), "{e}");
        // The rest of that answer is ignored; the connection carries on.
        small.ping().await.unwrap();
        assert_eq!(Stats::get(&server.stats.connections), 2);
    })
    .await;
}

#[tokio::test]
async fn a_subscription_grants_credit_back_as_pushes_are_consumed() {
    bounded(async {
        let (client, server) = client_for(Script {
            pushes: 10,
            ..Script::default()
        })
        .await;
        let mut sub = client.subscribe(4).await.unwrap();
        assert_eq!(sub.window(), 4);
        for order in 1..=10u64 {
            let push = sub.next().await.unwrap();
            assert_eq!(push.order, order);
            assert_eq!(push.envelope, envelope());
        }
        // 10 pushes with a window of 4 need at least 6 credit granted back.
        assert!(server.stats.credit_granted.load(Ordering::SeqCst) >= 6);

        let e = client.subscribe(1).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_ALREADY_SUBSCRIBED");

        // Dropping tells the server.
        drop(sub);
        eventually(|| Stats::get(&server.stats.unsubscribes) == 1).await;

        // A new subscription (after the pushes ran out) ends cleanly.
        let mut sub = client.subscribe(0).await.unwrap();
        sub.grant(2).await.unwrap();
        assert_eq!(sub.window(), 2);
        sub.unsubscribe().await.unwrap();
        assert_eq!(Stats::get(&server.stats.unsubscribes), 2);
        client.ping().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_loss_fails_requests_in_flight_and_the_next_call_reconnects() {
    bounded(async {
        // SENDs are never answered; TRACK makes the server hang up.
        let (client, server) = client_without_coalescing(Script {
            hold_sends: usize::MAX,
            drop_on_track: true,
            pushes: 0,
            ..Script::default()
        })
        .await;
        let mut sub = client.subscribe(8).await.unwrap();
        let sends: Vec<_> = (0..5u32)
            .map(|n| {
                let client = client.clone();
                tokio::spawn(async move { client.send(header(n), Bytes::new()).await })
            })
            .collect();
        eventually(|| Stats::get(&server.stats.held) == 5).await;

        let e = client.track(message_id(1)).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_CONNECTION_LOST", "{e}");
        assert!(
            e.to_string().contains("the server closed the connection"),
            "{e}"
        );
        for send in sends {
            let e = send.await.unwrap().unwrap_err();
            assert_eq!(e.code(), "CLIENT_CONNECTION_LOST", "{e}");
            assert!(e.is_transient());
        }
        // The subscription ended with its connection.
        assert!(sub.next().await.is_none());

        // The next call reconnects and says HELLO again.
        client.ping().await.unwrap();
        assert_eq!(Stats::get(&server.stats.connections), 2);
        assert_eq!(Stats::get(&server.stats.hellos), 2);
        // And subscribing works again on the new connection.
        drop(sub);
        client.subscribe(1).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_request_without_an_answer_times_out() {
    bounded(async {
        let server = start_tcp(
            Script {
                ignore_pings: true,
                ..Script::default()
            },
            None,
        )
        .await;
        let mut c = config(server.endpoint("native"));
        c.request_timeout = Duration::from_millis(200);
        let client = Client::connect(c).await.unwrap();
        let e = client.ping().await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_TIMEOUT", "{e}");
        assert!(e.to_string().contains("PING request"), "{e}");
        // The connection is still usable.
        client.send(header(3), Bytes::new()).await.unwrap();
        assert_eq!(Stats::get(&server.stats.connections), 1);
    })
    .await;
}

#[tokio::test]
async fn an_unreadable_frame_ends_the_connection_without_panicking() {
    bounded(async {
        let (client, server) = client_for(Script {
            garbage_on_ping: true,
            ..Script::default()
        })
        .await;
        let e = client.ping().await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_CONNECTION_LOST", "{e}");
        assert!(e.to_string().contains("unreadable frame"), "{e}");
        client.send(header(1), Bytes::new()).await.unwrap();
        assert_eq!(Stats::get(&server.stats.connections), 2);
    })
    .await;
}

#[tokio::test]
async fn connecting_fails_clearly() {
    bounded(async {
        // Nothing listens on the port.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let endpoint = crate::Endpoint::parse(&format!("native://127.0.0.1:{port}")).unwrap();
        let e = Client::connect(config(endpoint)).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_CONNECT_FAILED", "{e}");
        assert!(
            e.to_string().contains("check that the server is running"),
            "{e}"
        );

        // A listener that never answers HELLO.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint =
            crate::Endpoint::parse(&format!("native://{}", silent.local_addr().unwrap())).unwrap();
        let mut c = config(endpoint);
        c.connect_timeout = Duration::from_millis(200);
        let e = Client::connect(c).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_TIMEOUT", "{e}");
        assert!(e.to_string().contains("connecting to native://"), "{e}");

        let mut c = config(crate::Endpoint::parse("native://127.0.0.1:1").unwrap());
        c.max_in_flight = 0;
        let e = Client::connect(c).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_CONFIG_INVALID", "{e}");
    })
    .await;
}

#[tokio::test]
async fn close_flushes_and_later_calls_fail() {
    bounded(async {
        let (client, server) = client_for(Script::default()).await;
        let other = client.clone();
        client.send(header(1), Bytes::new()).await.unwrap();
        client.close().await;
        let e = other.ping().await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_CLOSED", "{e}");
        assert_eq!(Stats::get(&server.stats.connections), 1);
    })
    .await;
}

#[tokio::test]
async fn service_requests_answer_bodies_and_faults() {
    bounded(async {
        let (client, _server) = client_for(Script::default()).await;
        let body = client
            .request("pds", "get", Bytes::from_static(b"{}"), Default::default())
            .await
            .unwrap();
        assert_eq!(body.as_ref(), b"{}");
        let e = client
            .request(
                "pds",
                "get",
                Bytes::from_static(b"fault"),
                Default::default(),
            )
            .await
            .unwrap_err();
        match &e {
            ClientError::Service(f) => assert_eq!(f.code, "PDS_PATIENT_NOT_FOUND"),
            other => panic!("expected a service fault, got {other:?}"),
        }
        assert_eq!(e.code(), "CLIENT_SERVICE_FAULT");
        assert!(e.to_string().contains("PDS_PATIENT_NOT_FOUND"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn a_provider_receives_calls_and_replies() {
    bounded(async {
        let (client, _server) = client_for(Script::default()).await;
        let mut calls = client.register_provider("ers", 4).await.unwrap();
        assert_eq!((calls.provider_id, calls.service.as_str()), (7, "ers"));
        let call = calls.next().await.unwrap();
        assert_eq!((call.correlation, call.body.as_ref()), (42, &b"call"[..]));
        calls
            .reply(call.correlation, Ok(Bytes::from_static(b"done")))
            .await
            .unwrap();
    })
    .await;
}
