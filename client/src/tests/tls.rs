//! The client over TLS on TCP (`natives://`) against the fake server.

use bytes::Bytes;
use spine_core::ErrorCode;

use super::fake::{body, bounded, config, header, message_id, start_tcp, Pki, Script};
use crate::{Client, Endpoint, TlsOptions};

#[tokio::test]
async fn natives_verifies_the_server_and_carries_requests() {
    bounded(async {
        let pki = Pki::new();
        let server = start_tcp(Script::default(), Some(pki.server_config(false))).await;
        let mut c = config(server.endpoint("natives"));
        c.tls.ca_file = Some(pki.ca_file.clone());
        // The default server name is the host, 127.0.0.1 (an IP SAN).
        let client = Client::connect(c).await.unwrap();
        let tasks: Vec<_> = (0..16u32)
            .map(|n| {
                let client = client.clone();
                tokio::spawn(async move { (n, client.send(header(n), Bytes::new()).await) })
            })
            .collect();
        for task in tasks {
            let (n, ok) = task.await.unwrap();
            assert_eq!(ok.unwrap().message_id, message_id(n));
        }
        assert_eq!(
            client.download(message_id(1), 1).await.unwrap().body,
            body()
        );
        client.close().await;

        // An explicit server name that is in the certificate.
        let mut c = config(server.endpoint("natives"));
        c.tls.ca_file = Some(pki.ca_file.clone());
        c.tls.server_name = Some("localhost".into());
        Client::connect(c).await.unwrap().ping().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn natives_refuses_servers_it_cannot_verify() {
    bounded(async {
        let pki = Pki::new();
        let server = start_tcp(Script::default(), Some(pki.server_config(false))).await;

        // No CA file: refused before connecting, with what to set.
        let e = Client::connect(config(server.endpoint("natives")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "CLIENT_TLS", "{e}");
        assert!(e.to_string().contains("set tls.ca_file"), "{e}");

        // Another CA.
        let mut c = config(server.endpoint("natives"));
        c.tls.ca_file = Some(pki.other_ca_file.clone());
        let e = Client::connect(c).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_TLS", "{e}");
        assert!(
            e.to_string().contains("certificate was not accepted"),
            "{e}"
        );

        // A name that is not in the certificate.
        let mut c = config(server.endpoint("natives"));
        c.tls.ca_file = Some(pki.ca_file.clone());
        c.tls.server_name = Some("elsewhere.example".into());
        let e = Client::connect(c).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_TLS", "{e}");

        // Files that are missing or not PEM.
        let mut c = config(server.endpoint("natives"));
        c.tls.ca_file = Some(pki.ca_file.with_file_name("missing.pem"));
        let e = Client::connect(c).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_TLS", "{e}");
        assert!(e.to_string().contains("cannot read the CA file"), "{e}");
        let mut c = config(server.endpoint("natives"));
        c.tls.ca_file = Some(pki.client_key_file.clone());
        let e = Client::connect(c).await.unwrap_err();
        assert!(e.to_string().contains("no PEM CERTIFICATE"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    bounded(async {
        let pki = Pki::new();
        let server = start_tcp(Script::default(), Some(pki.server_config(true))).await;
        let tls = TlsOptions {
            ca_file: Some(pki.ca_file.clone()),
            client_cert: Some(pki.client_cert_file.clone()),
            client_key: Some(pki.client_key_file.clone()),
            server_name: None,
        };
        let mut c = config(server.endpoint("natives"));
        c.tls = tls.clone();
        let client = Client::connect(c).await.unwrap();
        // HELLO still names the mailbox.
        assert_eq!(client.session().mailbox.as_str(), "X26ABC1");
        client.ping().await.unwrap();

        // Without a client certificate the server refuses the handshake.
        let mut c = config(server.endpoint("natives"));
        c.tls.ca_file = tls.ca_file.clone();
        let e = Client::connect(c).await.unwrap_err();
        assert_eq!(e.code(), "CLIENT_TLS", "{e}");
        assert!(e.to_string().contains("tls.client_cert"), "{e}");

        // The TLS option on the endpoint itself.
        let mut c = config(Endpoint::Native {
            host: "127.0.0.1".into(),
            port: server.addr.port(),
            tls: true,
        });
        c.tls = tls;
        Client::connect(c).await.unwrap();
    })
    .await;
}
