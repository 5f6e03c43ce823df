//! Reading the ClientHello of QUIC client Initials: derive the Initial keys from the destination
//! connection id (RFC 9001 §5 for v1 and draft-29, RFC 9369 for v2), remove header protection,
//! open the AES-128-GCM payload, gather the CRYPTO frames (across packets and datagrams) and
//! parse the ClientHello in them.
//! Everything is bounds-checked; any inconsistency gives `None`.

use aes::cipher::BlockEncrypt;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

use super::tls::{Hello, client_hello};

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

const SALT_DRAFT23: [u8; 20] = [
    0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65,
    0xbe, 0xf9, 0xf5, 0x02,
];

/// Salt, label prefix and Initial packet type of a version.
fn version_params(version: u32) -> Option<(&'static [u8; 20], &'static str, u8)> {
    match version {
        0x0000_0001 => Some((&SALT_V1, "quic ", 0)),
        0x6b33_43cf => Some((&SALT_V2, "quicv2 ", 1)),
        0xff00_001d..=0xff00_0020 => Some((&SALT_DRAFT29, "quic ", 0)),
        0xff00_0017..=0xff00_001c => Some((&SALT_DRAFT23, "quic ", 0)),
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

/// What the client Initial packets of a datagram (or of several joined) yield.
#[derive(Debug, PartialEq, Eq)]
pub enum Initial {
    /// The whole ClientHello was read.
    Hello(Hello),
    /// Initial packets opened, but the ClientHello continues in a later datagram (large
    /// hellos, e.g. with post-quantum key shares, span two or more Initials).
    Incomplete,
    /// Not a client Initial of a version whose keys are known, or it did not open.
    Unreadable,
}

/// Client Initial keys of one connection: AEAD key, IV, header-protection key.
struct Keys {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

impl Keys {
    fn derive(salt: &[u8; 20], prefix: &str, dcid: &[u8]) -> Option<Self> {
        let (initial, _) = Hkdf::<Sha256>::extract(Some(salt), dcid);
        let mut client = [0u8; 32];
        expand_label(&initial, "client in", &mut client)?;
        let mut k = Keys {
            key: [0; 16],
            iv: [0; 12],
            hp: [0; 16],
        };
        expand_label(&client, &format!("{prefix}key"), &mut k.key)?;
        expand_label(&client, &format!("{prefix}iv"), &mut k.iv)?;
        expand_label(&client, &format!("{prefix}hp"), &mut k.hp)?;
        Some(k)
    }

    /// The header-protection mask for the 16-byte sample.
    fn mask(&self, sample: &[u8]) -> aes::Block {
        let mut block = aes::Block::clone_from_slice(sample);
        aes::Aes128::new(&self.hp.into()).encrypt_block(&mut block);
        block
    }

    fn nonce(&self, pn: u64) -> [u8; 12] {
        let mut nonce = self.iv;
        for (i, b) in pn.to_be_bytes().iter().enumerate() {
            nonce[4 + i] ^= b;
        }
        nonce
    }
}

/// The layout of one long-header packet: where its packet number starts and where it ends.
struct LongHeader<'a> {
    version: u32,
    packet_type: u8,
    dcid: &'a [u8],
    pn_offset: usize,
    end: usize,
}

fn long_header(p: &[u8]) -> Option<LongHeader<'_>> {
    let first = *p.first()?;
    if first & 0x80 == 0 {
        return None;
    }
    let version = u32::from_be_bytes(p.get(1..5)?.try_into().ok()?);
    let dcid_len = usize::from(*p.get(5)?);
    let dcid = p.get(6..6 + dcid_len)?;
    let mut at = 6 + dcid_len;
    let scid_len = usize::from(*p.get(at)?);
    at += 1 + scid_len;
    let (_, _, initial_type) = version_params(version)?;
    let packet_type = (first >> 4) & 0x03;
    if packet_type == initial_type {
        let (token_len, n) = varint(p, at)?;
        at += n + usize::try_from(token_len).ok()?;
    }
    let (length, n) = varint(p, at)?;
    at += n;
    let end = at.checked_add(usize::try_from(length).ok()?)?;
    // Shorter cannot be protected: header protection samples 16 bytes 4 past the number.
    (length >= 20 && end <= p.len()).then_some(LongHeader {
        version,
        packet_type,
        dcid,
        pn_offset: at,
        end,
    })
}

/// Opens one Initial packet, returning its plaintext frames.
fn open(p: &[u8], h: &LongHeader<'_>, keys: &Keys) -> Option<Vec<u8>> {
    // Header protection: a mask from AES-ECB of the 16-byte sample 4 bytes after the packet
    // number's start.
    let mask = keys.mask(p.get(h.pn_offset + 4..h.pn_offset + 20)?);
    let mut header = p[..h.pn_offset].to_vec();
    header[0] ^= mask[0] & 0x0f;
    let pn_len = usize::from(header[0] & 0x03) + 1;
    let mut pn = 0u64;
    for i in 0..pn_len {
        let byte = p[h.pn_offset + i] ^ mask[1 + i];
        header.push(byte);
        pn = (pn << 8) | u64::from(byte);
    }
    let body = p.get(h.pn_offset + pn_len..h.end)?;
    if body.len() < 16 {
        return None;
    }
    let (ct, tag) = body.split_at(body.len() - 16);
    let mut plain = ct.to_vec();
    Aes128Gcm::new(&keys.key.into())
        .decrypt_in_place_detached(
            Nonce::from_slice(&keys.nonce(pn)),
            &header,
            &mut plain,
            Tag::from_slice(tag),
        )
        .ok()?;
    Some(plain)
}

/// Largest ClientHello reassembled from CRYPTO frames.
const MAX_CRYPTO: usize = 64 * 1024;

/// The client's CRYPTO stream as gathered so far.
#[derive(Default)]
struct CryptoStream {
    bytes: Vec<u8>,
    filled: Vec<(usize, usize)>,
}

impl CryptoStream {
    /// Gathers the CRYPTO frames of one packet's plaintext (in any order).
    fn add_frames(&mut self, plain: &[u8]) -> Option<()> {
        let mut at = 0;
        while at < plain.len() {
            match plain[at] {
                0x00 | 0x01 => at += 1, // PADDING, PING
                0x06 => {
                    let (off, n1) = varint(plain, at + 1)?;
                    let (len, n2) = varint(plain, at + 1 + n1)?;
                    let (off, len) = (usize::try_from(off).ok()?, usize::try_from(len).ok()?);
                    let data = plain.get(at + 1 + n1 + n2..at + 1 + n1 + n2 + len)?;
                    if off + len > MAX_CRYPTO {
                        return None;
                    }
                    if self.bytes.len() < off + len {
                        self.bytes.resize(off + len, 0);
                    }
                    self.bytes[off..off + len].copy_from_slice(data);
                    self.filled.push((off, off + len));
                    at += 1 + n1 + n2 + len;
                }
                // ACK and anything else: stop; what was gathered may suffice.
                _ => break,
            }
        }
        Some(())
    }

    /// The ClientHello, once the stream holds all of it from offset 0.
    fn hello(mut self) -> Initial {
        self.filled.sort_unstable();
        let mut contiguous = 0;
        for (s, e) in self.filled {
            if s > contiguous {
                break;
            }
            contiguous = contiguous.max(e);
        }
        let c = &self.bytes;
        if c.len() < 4 || c[0] != 1 {
            return if contiguous == 0 {
                Initial::Incomplete
            } else {
                Initial::Unreadable
            };
        }
        let hs_len = usize::from(c[1]) << 16 | usize::from(c[2]) << 8 | usize::from(c[3]);
        if contiguous < 4 + hs_len {
            return Initial::Incomplete;
        }
        client_hello(&c[4..4 + hs_len]).map_or(Initial::Unreadable, Initial::Hello)
    }
}

/// Reads the ClientHello from the client Initial packets in `p`: one datagram, possibly with
/// coalesced packets, or several of one flow's datagrams joined end to end. Zero padding
/// between packets is skipped; reading stops at the first short-header packet.
pub fn read_client_hello(mut p: &[u8]) -> Initial {
    let mut keys: Option<(Vec<u8>, Keys)> = None;
    let mut stream = CryptoStream::default();
    let (mut opened, mut long_headers) = (false, 0u32);
    for _ in 0..16 {
        while let [0, rest @ ..] = p {
            p = rest;
        }
        let Some(h) = long_header(p) else {
            break;
        };
        let Some((salt, prefix, initial_type)) = version_params(h.version) else {
            break;
        };
        long_headers += 1;
        if h.packet_type == initial_type {
            if keys.as_ref().is_none_or(|(dcid, _)| dcid != h.dcid) {
                match Keys::derive(salt, prefix, h.dcid) {
                    Some(k) => keys = Some((h.dcid.to_vec(), k)),
                    None => break,
                }
            }
            let Some((_, k)) = &keys else { break };
            let Some(plain) = open(p, &h, k) else {
                break;
            };
            opened = true;
            if stream.add_frames(&plain).is_none() {
                return Initial::Unreadable;
            }
        }
        p = &p[h.end..];
    }
    match (opened, long_headers) {
        (true, _) => stream.hello(),
        // 0-RTT (or a Handshake packet) seen before the Initial: capture order can put a
        // resumed connection's early data first; the Initial follows.
        (false, 1..) => Initial::Incomplete,
        (false, 0) => Initial::Unreadable,
    }
}

/// Builds a client Initial packet carrying `crypto` at `offset` of the CRYPTO stream, padded to
/// `pad_to` bytes — what a client sends, for tests and the capture generator.
pub fn seal_client_initial(
    version: u32,
    dcid: &[u8],
    pn: u8,
    offset: usize,
    crypto: &[u8],
    pad_to: usize,
) -> Vec<u8> {
    let (salt, prefix, initial_type) = version_params(version).unwrap_or((&SALT_V1, "quic ", 0));
    let keys = Keys::derive(salt, prefix, dcid).unwrap_or(Keys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    });
    let mut frames = vec![0x06];
    push_varint(&mut frames, offset as u64);
    push_varint(&mut frames, crypto.len() as u64);
    frames.extend_from_slice(crypto);
    let mut header = vec![0xc0 | (initial_type << 4), 0, 0, 0, 0];
    header[1..5].copy_from_slice(&version.to_be_bytes());
    header.push(dcid.len() as u8);
    header.extend_from_slice(dcid);
    header.extend_from_slice(&[0, 0]); // no source connection id, no token
    // Length: 2-byte varint over packet number (1 byte), frames and tag.
    let overhead = header.len() + 2 + 1 + 16;
    frames.resize(frames.len().max(pad_to.saturating_sub(overhead)), 0);
    let length = 1 + frames.len() + 16;
    header.extend_from_slice(&(0x4000 | length as u16).to_be_bytes());
    let pn_offset = header.len();
    header.push(pn);
    let mut body = frames;
    let tag = Aes128Gcm::new(&keys.key.into())
        .encrypt_in_place_detached(
            Nonce::from_slice(&keys.nonce(u64::from(pn))),
            &header,
            &mut body,
        )
        .unwrap_or_default();
    let mut packet = header;
    packet.extend_from_slice(&body);
    packet.extend_from_slice(&tag);
    let mask = keys.mask(&packet[pn_offset + 4..pn_offset + 20]);
    packet[0] ^= mask[0] & 0x0f;
    packet[pn_offset] ^= mask[1];
    packet
}

fn push_varint(out: &mut Vec<u8>, v: u64) {
    if v < 64 {
        out.push(v as u8);
    } else {
        out.extend_from_slice(&(0x4000 | v as u16).to_be_bytes());
    }
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

    #[test]
    fn a_hello_over_two_initials_is_read_once_both_are_joined() {
        let rec = crate::synth::client_hello_with("split.example", &["h3"]);
        let hs = &rec[5..];
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        for version in [1, 0x6b33_43cf, 0xff00_001d] {
            let cut = hs.len() / 2;
            let first = seal_client_initial(version, &dcid, 0, 0, &hs[..cut], 1200);
            let second = seal_client_initial(version, &dcid, 1, cut, &hs[cut..], 1200);
            assert_eq!(read_client_hello(&first), Initial::Incomplete);
            assert_eq!(
                read_client_hello(&second),
                Initial::Incomplete,
                "the start is missing"
            );
            // Either order, with zero padding after a datagram's packet.
            for joined in [
                [first.clone(), vec![0; 30], second.clone()].concat(),
                [second.clone(), first.clone()].concat(),
            ] {
                let Initial::Hello(h) = read_client_hello(&joined) else {
                    panic!("{version:x}: not read");
                };
                assert_eq!(h.sni.as_deref(), Some("split.example"));
                assert_eq!(h.alpn.as_deref(), Some("h3"));
            }
        }
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
        assert_eq!(read_client_hello(&p), Initial::Unreadable);
        p[0] = 0xd3; // 0-RTT type, still too short for its length
        assert_eq!(read_client_hello(&p), Initial::Unreadable);
        for cut in 0..p.len().min(64) {
            assert_eq!(read_client_hello(&p[..cut]), Initial::Unreadable);
        }
    }
}
