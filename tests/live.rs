//! `flowmesh flows --iface` on a veth pair whose far end sits in a network namespace the test
//! creates: packets sent from the namespace become a flow with the right tuple and count.
//! Skips, saying so, when not root or without `ip`. Traffic stays inside the pair.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Netns {
    ns: String,
    host_if: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("ip runs");
    assert!(st.success(), "ip {args:?} failed");
}

#[test]
fn live_capture_on_a_veth_pair_reports_the_flow() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("ip").arg("-V").output().is_err() {
        flowmesh_testkit::skip(
            "live_capture_on_a_veth_pair_reports_the_flow",
            "live capture needs root and iproute2 to create a network namespace",
        );
        return;
    }
    let id = std::process::id() % 100_000;
    let net = Netns {
        ns: format!("fmtest-{id}"),
        host_if: format!("fmh{id}"),
    };
    let peer = format!("fmp{id}");
    let third = (id % 250) as u8 + 1;
    let (host_ip, ns_ip) = (format!("169.254.{third}.1"), format!("169.254.{third}.2"));
    ip(&["netns", "add", &net.ns]);
    ip(&[
        "link",
        "add",
        &net.host_if,
        "type",
        "veth",
        "peer",
        "name",
        &peer,
    ]);
    ip(&["link", "set", &peer, "netns", &net.ns]);
    ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &net.host_if]);
    ip(&["link", "set", &net.host_if, "up"]);
    ip(&[
        "netns",
        "exec",
        &net.ns,
        "ip",
        "addr",
        "add",
        &format!("{ns_ip}/30"),
        "dev",
        &peer,
    ]);
    ip(&["netns", "exec", &net.ns, "ip", "link", "set", &peer, "up"]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_flowmesh"))
        .args([
            "flows",
            "--iface",
            &net.host_if,
            "--filter",
            "udp port 40404",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the capture is open: the sensor logs it after libpcap activated it.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut line = String::new();
    while !line.contains("capturing") {
        line.clear();
        assert!(Instant::now() < deadline, "capture did not start");
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "flowmesh exited before capturing"
        );
    }
    let send = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('{ns_ip}',50505))\nfor _ in range(5): s.sendto(b'x'*64,('{host_ip}',40404))"
    );
    ip(&["netns", "exec", &net.ns, "python3", "-c", &send]);

    // The sender has exited, so its five datagrams are on the wire. On SIGINT the sensor reads
    // everything already queued before it stops, then prints the open flows.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let flows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let f = flows
        .iter()
        .find(|f| f["server_port"] == 40404)
        .unwrap_or_else(|| panic!("no flow to port 40404 in {flows:?}"));
    assert_eq!(f["client_ip"], ns_ip.as_str());
    assert_eq!(f["client_port"], 50505);
    assert_eq!(f["c2s_packets"], 5);
    assert_eq!(f["l4"], "UDP");
}
