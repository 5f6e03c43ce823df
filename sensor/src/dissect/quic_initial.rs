//! Reading the SNI of a QUIC client Initial: derive the Initial keys from the destination
//! connection id (RFC 9001 §5 for v1 and draft-29, RFC 9369 for v2), remove header protection,
//! open the AES-128-GCM payload, gather the CRYPTO frames and parse the ClientHello in them.
//! Everything is bounds-checked; any inconsistency gives `None`.

use aes::cipher::BlockEncrypt;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

use super::tls::client_hello_sni;

const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
const SALT_DRAFT29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];

/// Salt, label prefix and Initial packet type of a version.
fn version_params(version: u32) -> Option<(&'static [u8; 20], &'static str, u8)> {
    match version {
        0x0000_0001 => Some((&SALT_V1, "quic ", 0)),
        0x6b33_43cf => Some((&SALT_V2, "quicv2 ", 1)),
        0xff00_001d..=0xff00_0020 => Some((&SALT_DRAFT29, "quic ", 0)),
        _ => None,
    }
}

/// TLS 1.3's HKDF-Expand-Label with an empty context.
fn expand_label(secret: &[u8], label: &str, out: &mut [u8]) -> Option<()> {
    let hk = Hkdf::<Sha256>::from_prk(secret).ok()?;
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len());
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push(full.len() as u8);
    info.extend_from_slice(full.as_bytes());
    info.push(0);
    hk.expand(&info, out).ok()
}

/// A QUIC variable-length integer at `at`: (value, bytes used).
fn varint(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let first = *b.get(at)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(at..at + len)?;
    let mut v = u64::from(first & 0x3f);
    for &x in &bytes[1..] {
        v = (v << 8) | u64::from(x);
    }
    Some((v, len))
}

/// The SNI of a client Initial packet, if it carries the whole ClientHello.
pub fn sni(p: &[u8]) -> Option<String> {
    let first = *p.first()?;
    let version = u32::from_be_bytes(p.get(1..5)?.try_into().ok()?);
    let (salt, prefix, initial_type) = version_params(version)?;
    if first & 0x80 == 0 || (first >> 4) & 0x03 != initial_type {
        return None;
    }
    let dcid_len = usize::from(*p.get(5)?);
    let dcid = p.get(6..6 + dcid_len)?;
    let mut at = 6 + dcid_len;
    let scid_len = usize::from(*p.get(at)?);
    at += 1 + scid_len;
    let (token_len, n) = varint(p, at)?;
    at += n + usize::try_from(token_len).ok()?;
    let (length, n) = varint(p, at)?;
    at += n;
    let pn_offset = at;
    let end = pn_offset.checked_add(usize::try_from(length).ok()?)?;
    if end > p.len() || length < 20 {
        return None;
    }

    let (initial, _) = Hkdf::<Sha256>::extract(Some(salt), dcid);
    let mut client = [0u8; 32];
    expand_label(&initial, "client in", &mut client)?;
    let (mut key, mut iv, mut hp) = ([0u8; 16], [0u8; 12], [0u8; 16]);
    expand_label(&client, &format!("{prefix}key"), &mut key)?;
    expand_label(&client, &format!("{prefix}iv"), &mut iv)?;
    expand_label(&client, &format!("{prefix}hp"), &mut hp)?;

    // Header protection: a mask from AES-ECB of the 16-byte sample 4 bytes after the packet
    // number's start.
    let sample = p.get(pn_offset + 4..pn_offset + 20)?;
    let mut block = aes::Block::clone_from_slice(sample);
    aes::Aes128::new(&hp.into()).encrypt_block(&mut block);
    let mut header = p[..pn_offset].to_vec();
    header[0] ^= block[0] & 0x0f;
    let pn_len = usize::from(header[0] & 0x03) + 1;
    let mut pn = 0u64;
    for i in 0..pn_len {
        let byte = p[pn_offset + i] ^ block[1 + i];
        header.push(byte);
        pn = (pn << 8) | u64::from(byte);
    }
    let mut nonce = iv;
    for (i, b) in pn.to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    let body = p.get(pn_offset + pn_len..end)?;
    if body.len() < 16 {
        return None;
    }
    let (ct, tag) = body.split_at(body.len() - 16);
    let mut plain = ct.to_vec();
    Aes128Gcm::new(&key.into())
        .decrypt_in_place_detached(
            Nonce::from_slice(&nonce),
            &header,
            &mut plain,
            Tag::from_slice(tag),
        )
        .ok()?;
    client_hello_from_frames(&plain)
}

/// Gathers CRYPTO frames (in any order) and reads the SNI once the ClientHello is complete.
fn client_hello_from_frames(plain: &[u8]) -> Option<String> {
    let mut crypto = vec![0u8; 0];
    let mut filled: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    while at < plain.len() {
        match plain[at] {
            0x00 | 0x01 => at += 1, // PADDING, PING
            0x06 => {
                let (off, n1) = varint(plain, at + 1)?;
                let (len, n2) = varint(plain, at + 1 + n1)?;
                let (off, len) = (usize::try_from(off).ok()?, usize::try_from(len).ok()?);
                let data = plain.get(at + 1 + n1 + n2..at + 1 + n1 + n2 + len)?;
                if off + len > 64 * 1024 {
                    return None;
                }
                if crypto.len() < off + len {
                    crypto.resize(off + len, 0);
                }
                crypto[off..off + len].copy_from_slice(data);
                filled.push((off, off + len));
                at += 1 + n1 + n2 + len;
            }
            // ACK and anything else: stop; what was gathered may suffice.
            _ => break,
        }
    }
    // The bytes from 0 must be contiguous through the whole handshake message.
    filled.sort_unstable();
    let mut contiguous = 0;
    for (s, e) in filled {
        if s > contiguous {
            break;
        }
        contiguous = contiguous.max(e);
    }
    if crypto.len() < 4 || crypto[0] != 1 {
        return None;
    }
    let hs_len =
        usize::from(crypto[1]) << 16 | usize::from(crypto[2]) << 8 | usize::from(crypto[3]);
    if contiguous < 4 + hs_len {
        return None;
    }
    client_hello_sni(&crypto[4..4 + hs_len])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9001 appendix A.1: the client's Initial keys for DCID 0x8394c8f03e515708.
    #[test]
    fn initial_keys_match_rfc9001_appendix_a() {
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        let (initial, _) = Hkdf::<Sha256>::extract(Some(&SALT_V1), &dcid);
        let mut client = [0u8; 32];
        expand_label(&initial, "client in", &mut client).unwrap();
        let (mut key, mut iv, mut hp) = ([0u8; 16], [0u8; 12], [0u8; 16]);
        expand_label(&client, "quic key", &mut key).unwrap();
        expand_label(&client, "quic iv", &mut iv).unwrap();
        expand_label(&client, "quic hp", &mut hp).unwrap();
        assert_eq!(hex(&key), "1f369613dd76d5467730efcbe3b1a22d");
        assert_eq!(hex(&iv), "fa044b2f42a3fd3b46fb255c");
        assert_eq!(hex(&hp), "9f50449e04a0e810283a1e9933adedd2");
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        let mut p = vec![0xc3, 0, 0, 0, 1, 8];
        p.extend_from_slice(&[1; 8]);
        p.extend_from_slice(&[0, 0, 0x44, 0xd0]);
        p.extend_from_slice(&[0xab; 1200]);
        assert_eq!(sni(&p), None);
        for cut in 0..p.len().min(64) {
            assert_eq!(sni(&p[..cut]), None);
        }
    }
}
