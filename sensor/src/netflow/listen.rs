//! The UDP socket exporters send to, read on a thread of its own until told to stop.

use std::net::UdpSocket;
use std::time::Duration;

use flowmesh_record::FlowRecord;

use super::Receiver;

fn now_us() -> i64 {
    flowmesh_link::envelope::now_micros() as i64
}

/// Binds `addr` (e.g. `0.0.0.0:2055`); reads wake at least every 200 ms to pass time.
pub fn bind(addr: &str) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(addr)?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(socket)
}

/// Reads datagrams into `receiver` until `stop()` says so (then what is buffered is read and
/// every held record goes out); `every` is called about every second with the receiver
/// (counters, logs).
pub fn run(
    socket: &UdpSocket,
    receiver: &mut Receiver,
    stop: impl Fn() -> bool,
    emit: &mut impl FnMut(FlowRecord),
    mut every: impl FnMut(&Receiver),
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 65_536];
    let mut last_tick = now_us();
    while !stop() {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => receiver.datagram(from, &buf[..n], now_us(), emit),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
        let now = now_us();
        if now - last_tick >= 200_000 {
            receiver.tick(now, emit);
            if now / 1_000_000 != last_tick / 1_000_000 {
                every(receiver);
            }
            last_tick = now;
        }
    }
    // What arrived before the stop is read too: a datagram is never left in the buffer.
    if socket.set_nonblocking(true).is_ok() {
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            receiver.datagram(from, &buf[..n], now_us(), emit);
        }
    }
    receiver.finish(emit);
    every(receiver);
    Ok(())
}
