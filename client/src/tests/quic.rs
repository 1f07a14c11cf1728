//! The client over QUIC against the fake server (which follows the stream
//! convention in the crate docs).

use bytes::Bytes;
use spine_core::ErrorCode;

use super::fake::{
    body, bounded, config, envelope, eventually, header, message_id, start_quic, workflow,
    FakeServer, Pki, Script, Stats, SERVER_NAME,
};
use crate::{Client, ClientConfig};

fn quic_config(server: &FakeServer, pki: &Pki) -> ClientConfig {
    let mut c = config(server.endpoint("quic"));
    c.tls.ca_file = Some(pki.ca_file.clone());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_carries_concurrent_requests_on_separate_streams() {
    bounded(async {
        let pki = Pki::new();
        let server = start_quic(Script::default(), pki.server_config(false)).await;
        let client = Client::connect(quic_config(&server, &pki)).await.unwrap();
        assert_eq!(client.session().server_name, SERVER_NAME);

        let tasks: Vec<_> = (0..32u32)
            .map(|n| {
                let client = client.clone();
                tokio::spawn(async move { (n, client.send(header(n), Bytes::new()).await) })
            })
            .collect();
        for task in tasks {
            let (n, ok) = task.await.unwrap();
            assert_eq!(ok.unwrap().message_id, message_id(n));
        }
        let chunk = client.download(message_id(1), 1).await.unwrap();
        assert_eq!(chunk.body, body());
        assert_eq!(chunk.envelope, envelope());
        assert_eq!(client.list_inbox(None, 5, None).await.unwrap().total, 1);
        assert_eq!(
            client
                .lookup(None, workflow("PATH_TEST"))
                .await
                .unwrap()
                .len(),
            1
        );
        client.acknowledge(message_id(1)).await.unwrap();
        client.ping().await.unwrap();
        assert_eq!(Stats::get(&server.stats.connections), 1);
        client.close().await;
    })
    .await;
}

#[tokio::test]
async fn quic_hello_refusal_and_tls_failures_are_clear() {
    bounded(async {
        let pki = Pki::new();
        let server = start_quic(Script::default(), pki.server_config(false)).await;

        let mut c = quic_config(&server, &pki);
        c.password = "wrong".into();
        let e = Client::connect(c).await.unwrap_err();
        assert_eq!(e.code(), "AUTH_FAILED", "{e}");
        assert_eq!(e.name(), "DIR_AUTH_FAILED");

        let e = Client::connect(config(server.endpoint("quic")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "CLIENT_TLS", "{e}");
        assert!(e.to_string().contains("tls.ca_file"), "{e}");

        let mut c = quic_config(&server, &pki);
        c.tls.ca_file = Some(pki.other_ca_file.clone());
        let e = Client::connect(c).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_TLS", "{e}");
    })
    .await;
}

#[tokio::test]
async fn quic_mutual_tls() {
    bounded(async {
        let pki = Pki::new();
        let server = start_quic(Script::default(), pki.server_config(true)).await;
        let mut c = quic_config(&server, &pki);
        c.tls.client_cert = Some(pki.client_cert_file.clone());
        c.tls.client_key = Some(pki.client_key_file.clone());
        let client = Client::connect(c).await.unwrap();
        client.ping().await.unwrap();

        let e = Client::connect(quic_config(&server, &pki))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "CLIENT_TLS", "{e}");
    })
    .await;
}

#[tokio::test]
async fn quic_subscription_grants_credit_on_its_stream() {
    bounded(async {
        let pki = Pki::new();
        let server = start_quic(
            Script {
                pushes: 10,
                ..Script::default()
            },
            pki.server_config(false),
        )
        .await;
        let client = Client::connect(quic_config(&server, &pki)).await.unwrap();
        let mut sub = client.subscribe(3).await.unwrap();
        for order in 1..=10u64 {
            assert_eq!(sub.next().await.unwrap().order, order);
        }
        assert!(
            server
                .stats
                .credit_granted
                .load(std::sync::atomic::Ordering::SeqCst)
                >= 7
        );
        // Requests still flow on their own streams meanwhile.
        client.ping().await.unwrap();
        let e = client.subscribe(1).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_ALREADY_SUBSCRIBED");

        // Dropping finishes the stream, which the server takes as UNSUBSCRIBE.
        drop(sub);
        eventually(|| Stats::get(&server.stats.unsubscribes) == 1).await;

        let sub = client.subscribe(2).await.unwrap();
        sub.unsubscribe().await.unwrap();
        assert_eq!(Stats::get(&server.stats.unsubscribes), 2);
    })
    .await;
}

#[tokio::test]
async fn quic_connection_loss_fails_requests_and_the_next_call_reconnects() {
    bounded(async {
        let pki = Pki::new();
        let server = start_quic(
            Script {
                drop_on_track: true,
                ..Script::default()
            },
            pki.server_config(false),
        )
        .await;
        let client = Client::connect(quic_config(&server, &pki)).await.unwrap();
        let mut sub = client.subscribe(4).await.unwrap();
        let e = client.track(message_id(1)).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_CONNECTION_LOST", "{e}");
        assert!(sub.next().await.is_none());

        client.ping().await.unwrap();
        assert_eq!(Stats::get(&server.stats.connections), 2);
        assert_eq!(Stats::get(&server.stats.hellos), 2);
    })
    .await;
}
