//! Any bytes as tunnel frames (remote assistance): refused or opened, never a panic. The first
//! byte splits the input into frames; a genuine frame is mixed in so opening goes past the
//! sequence check too.
#![no_main]

use flowmesh_link::tunnel::{Handshake, Kind, Role};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (i, r) = (Handshake::new(), Handshake::new());
    let (ip, rp) = (i.public(), r.public());
    let Ok((mut send, _)) = i.finish(&[9; 32], &[1; 16], Role::Initiator, rp) else {
        return;
    };
    let Ok((_, mut recv)) = r.finish(&[9; 32], &[1; 16], Role::Responder, ip) else {
        return;
    };
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let genuine = send.seal(Kind::Data, rest);
    let _ = recv.open(&genuine);
    for frame in rest.chunks(usize::from(split).max(1)) {
        let _ = recv.open(frame);
    }
});
