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

/// A veth pair whose far end is in a new namespace: (the pair, host side IP, namespace IP).
/// `None` (the test skips, saying so) when not root or without iproute2.
fn veth(test: &str, n: u32) -> Option<(Netns, String, String)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("ip").arg("-V").output().is_err() {
        flowmesh_testkit::skip(
            test,
            "live capture needs root and iproute2 to create a network namespace",
        );
        return None;
    }
    let id = (std::process::id() % 10_000) * 10 + n;
    let net = Netns {
        ns: format!("fmtest-{id}"),
        host_if: format!("fmh{id}"),
    };
    let peer = format!("fmp{id}");
    let (third, fourth) = ((id / 64 % 250) as u8 + 1, (id % 64 * 4) as u8);
    let (host_ip, ns_ip) = (
        format!("169.254.{third}.{}", fourth + 1),
        format!("169.254.{third}.{}", fourth + 2),
    );
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
    Some((net, host_ip, ns_ip))
}

/// `flowmesh flows --iface` with `args`, once it says the capture is open.
fn capture(iface: &str, args: &[&str]) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowmesh"))
        .args(["flows", "--iface", iface])
        .args(args)
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
    // The rest of its log is not read: keep the pipe drained so it never blocks.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    child
}

#[test]
fn live_capture_on_a_veth_pair_reports_the_flow() {
    let Some((net, host_ip, ns_ip)) = veth("live_capture_on_a_veth_pair_reports_the_flow", 0)
    else {
        return;
    };
    let child = capture(&net.host_if, &["--filter", "udp port 40404"]);
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

#[test]
fn a_closed_connection_prints_while_the_capture_runs_on_flow_workers() {
    let Some((net, host_ip, ns_ip)) = veth(
        "a_closed_connection_prints_while_the_capture_runs_on_flow_workers",
        1,
    ) else {
        return;
    };
    // On one thread and on flow workers (which the reader ticks while the network is quiet).
    for threads in ["1", "2"] {
        let listener = std::net::TcpListener::bind((host_ip.as_str(), 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut c, &mut got).unwrap();
            got.len()
        });
        let filter = format!("tcp port {port}");
        let mut child = capture(&net.host_if, &["--threads", threads, "--filter", &filter]);
        let send = format!(
            "import socket\ns=socket.create_connection(('{host_ip}',{port}))\ns.sendall(b'x'*100)\ns.close()"
        );
        ip(&["netns", "exec", &net.ns, "python3", "-c", &send]);
        assert_eq!(server.join().unwrap(), 100);

        // Closed connections print soon after their close, on any worker: the record comes
        // while the capture still runs (a reader waits with a deadline, not for the stop).
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(20));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        assert!(child.wait().unwrap().success());
        let line = line
            .unwrap_or_else(|_| panic!("{threads} threads: no record within 20 s of the close"));
        let f: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(f["server_port"], port);
        assert_eq!(f["client_ip"], ns_ip.as_str());
        assert_eq!(f["c2s_bytes"].as_u64().map(|b| b > 100), Some(true), "{f}");
    }
}
