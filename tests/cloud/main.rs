//! The cloud side against real nats-server clusters: enrollment and revocation while the
//! cluster runs, the manager's registry, the cloud inbox and shared blacklists, remote actions.

#[path = "../support/mod.rs"]
mod support;

mod blacklist;
mod enroll;
mod remote;
mod replays;

use std::path::Path;
use std::time::Duration;

use flowmesh_link::async_nats::jetstream;
use flowmesh_link::connect::{BrokerConfig, connect};
use flowmesh_link::streams;
use flowmesh_testkit::process::wait_for;
use flowmesh_testkit::{Cluster, Collector, Sensor, TestUser};
use support::broker_toml;
use tokio::time::Instant;

const START: Duration = Duration::from_secs(90);

/// Runs a `flowmesh` command to its end (the harness's `cli`).
fn flowmesh(args: &[&str]) -> std::process::Output {
    support::cli(args)
}

/// Its standard output, once it succeeded.
fn ok(o: std::process::Output) -> String {
    support::stdout_of(&o)
}

/// `instance`'s `[broker]` pointed at one node only, with its credentials at `creds`.
fn one_node(
    cluster: &Cluster,
    user: &str,
    instance: &str,
    url: &str,
    creds: &Path,
) -> BrokerConfig {
    let mut b = cluster.broker_config(user, instance, None);
    b.urls = vec![url.to_string()];
    b.creds_file = creds.to_path_buf();
    b.connect_timeout_secs = 5;
    b
}

/// Starts `flowmesh` with `args`, its stderr to `log`; it dies with the test.
fn spawn(args: &[&str], log: &Path) -> std::process::Child {
    support::spawn_logged(Path::new(env!("CARGO_BIN_EXE_flowmesh")), args, log)
}

fn terminate(child: &mut std::process::Child) {
    flowmesh_testkit::process::terminate(child);
}

/// A flow batch from `instance` with one TCP flow from 10.0.0.5 to `server`, sealed by `who`.
fn batch_to(who: &flowmesh_link::Identity, instance: &str, seq: u64, server: [u8; 4]) -> Vec<u8> {
    batch_with(who, instance, seq, server, true)
}

/// A sealed batch of one TLS flow from 10.0.0.5 to `server`; `handshake`: the TCP handshake
/// was seen from the client's side (otherwise only a SYN-ACK came back, as to a spoofed SYN).
fn batch_with(
    who: &flowmesh_link::Identity,
    instance: &str,
    seq: u64,
    server: [u8; 4],
    handshake: bool,
) -> Vec<u8> {
    use prost::Message;
    let now = flowmesh_link::envelope::now_micros() as i64;
    let batch = flowmesh_proto::v1::FlowBatch {
        instance: instance.into(),
        sequence: seq,
        boot_id: vec![7; 8],
        watermark_us: 0,
        flows: vec![flowmesh_proto::v1::Flow {
            l4: "TCP".into(),
            client_ip: vec![10, 0, 0, 5],
            client_port: 40000 + seq as u32,
            server_ip: server.to_vec(),
            server_port: 443,
            l7: "TLS".into(),
            c2s_packets: 3,
            c2s_bytes: 300,
            s2c_packets: 3,
            s2c_bytes: 3000,
            first_seen_us: now - 1_000_000,
            last_seen_us: now,
            c2s_tcp_flags: if handshake { 0x18 | 0x02 } else { 0x04 },
            s2c_tcp_flags: 0x12,
            ..Default::default()
        }],
    };
    let subject = format!("flowmesh.flows.{instance}");
    flowmesh_link::Sealer::new(who, who.public())
        .seal(&subject, &batch.encode_to_vec())
        .unwrap()
}
