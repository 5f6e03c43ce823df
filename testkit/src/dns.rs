//! A real DNS server (hickory-server) in-process on a free loopback port, serving the zone
//! `test.` with the TXT records a test gives it.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::rdata::{SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

/// Serves zone `test.` with `records` (full name, the TXT record's character-strings) on UDP
/// and TCP of one free port. Stop it with `shutdown_gracefully`.
pub async fn serve_txt(records: &[(&str, Vec<&str>)]) -> (SocketAddr, Server<Catalog>) {
    let origin = Name::from_str("test.").expect("a valid name");
    let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    let soa = SOA::new(
        Name::from_str("ns.test.").expect("a valid name"),
        Name::from_str("admin.test.").expect("a valid name"),
        1,
        3600,
        600,
        86400,
        60,
    );
    zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
    for (name, values) in records {
        let record = Record::from_rdata(
            Name::from_str(name).expect("a valid record name"),
            60,
            RData::TXT(TXT::new(values.iter().map(|v| v.to_string()).collect())),
        );
        zone.upsert_mut(record, 1);
    }
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
    // UDP on a free port, and TCP on the same number (for truncated answers): that number may
    // be taken on TCP, so a few ports are tried before giving up.
    let mut tries = 0;
    let (udp, tcp, addr) = loop {
        tries += 1;
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("a free UDP port");
        let addr = udp.local_addr().expect("a bound address");
        match tokio::net::TcpListener::bind(addr).await {
            Ok(tcp) => break (udp, tcp, addr),
            Err(e) if tries >= 20 => panic!("no port free on both UDP and TCP: {e}"),
            Err(_) => continue,
        }
    };
    let mut server = Server::new(catalog);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 4096);
    (addr, server)
}
