//! The cloud key lookup against a real DNS server (hickory-server, in-process, free port).

use std::net::SocketAddr;

use flowmesh_link::cloud_key::{CloudKeyConfig, CloudKeyError, resolve};
use hickory_server::Server;
use hickory_server::zone_handler::Catalog;

const GOOD: &str = "b61aaccbf226f2095f48a7ca9d417791f71c4b37e28827cee376b4c9ff5d4c6a";
const OTHER: &str = "0000000000000000000000000000000000000000000000000000000000000001";

/// A zone `test.` with one TXT record per case.
async fn dns_server() -> (SocketAddr, Server<Catalog>) {
    flowmesh_testkit::dns::serve_txt(&[
        // A key split over two character-strings, as some DNS front-ends publish long values.
        ("cloud._pubkey.good.test.", vec![&GOOD[..40], &GOOD[40..]]),
        ("cloud._pubkey.malformed.test.", vec!["not-a-key"]),
        ("cloud._pubkey.two.test.", vec![GOOD]),
        ("cloud._pubkey.two.test.", vec![OTHER]),
        ("elsewhere.missing.test.", vec![GOOD]),
    ])
    .await
}

fn config(domain: &str, ns: SocketAddr, pinned: Option<&str>) -> CloudKeyConfig {
    CloudKeyConfig {
        pinned_signing: None,
        domain: Some(domain.into()),
        name_server: Some(ns),
        pinned: pinned.map(String::from),
        timeout_secs: Some(2),
    }
}

#[tokio::test]
async fn finds_the_key_and_reports_each_failure_distinctly() {
    let (ns, mut server) = dns_server().await;

    let key = resolve(&config("good.test", ns, None)).await.unwrap();
    assert_eq!(key.to_hex(), GOOD);
    assert_eq!(
        resolve(&config("good.test", ns, Some(GOOD)))
            .await
            .unwrap()
            .to_hex(),
        GOOD
    );

    match resolve(&config("good.test", ns, Some(OTHER))).await {
        Err(CloudKeyError::PinMismatch { dns, pinned, .. }) => {
            assert_eq!(dns, GOOD);
            assert_eq!(pinned, OTHER);
        }
        other => panic!("expected a pin mismatch, got {other:?}"),
    }
    assert!(matches!(
        resolve(&config("missing.test", ns, None)).await,
        Err(CloudKeyError::NoRecord(_))
    ));
    assert!(matches!(
        resolve(&config("malformed.test", ns, None)).await,
        Err(CloudKeyError::Malformed { .. })
    ));
    assert!(matches!(
        resolve(&config("two.test", ns, None)).await,
        Err(CloudKeyError::Malformed { .. })
    ));
    server.shutdown_gracefully().await.unwrap();
}

#[tokio::test]
async fn a_silent_name_server_times_out() {
    // A bound socket that never answers: the query is sent and nothing comes back.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let mut cfg = config("good.test", addr, None);
    cfg.timeout_secs = Some(1);
    let err = resolve(&cfg).await.unwrap_err();
    assert!(
        matches!(err, CloudKeyError::Timeout { .. }),
        "expected a timeout, got {err:?}"
    );
}

#[tokio::test]
async fn pin_alone_works_without_dns_and_bad_pins_are_refused() {
    let cfg = CloudKeyConfig {
        pinned: Some(GOOD.into()),
        ..Default::default()
    };
    assert_eq!(resolve(&cfg).await.unwrap().to_hex(), GOOD);
    let bad = CloudKeyConfig {
        pinned: Some("xyz".into()),
        ..Default::default()
    };
    assert!(matches!(resolve(&bad).await, Err(CloudKeyError::BadPin(_))));
    assert_eq!(
        resolve(&CloudKeyConfig::default()).await,
        Err(CloudKeyError::NotConfigured)
    );
}
