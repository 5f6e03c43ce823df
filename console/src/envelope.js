// The flowmesh sealed envelope, version 1 (link/ENVELOPE.md), in the browser with WebCrypto:
// X25519, HKDF-SHA256, AES-256-GCM. Byte for byte what `flowmesh_link::envelope` seals and
// opens; test/vectors.mjs runs the committed test vectors through it in Chromium.
//
// Private keys are CryptoKeys the caller imported as non-extractable (see importIdentity): this
// module never sees their bytes.

const te = new TextEncoder();
const SALT = te.encode("flowmesh/envelope/v1");
const MAGIC = [0x46, 0x4d];
const VERSION = 1;
const SUITE = 1;
/** Bytes before the ciphertext. */
export const HEADER_LEN = 136;
/** Header and GCM tag: the smallest envelope. */
export const OVERHEAD = HEADER_LEN + 16;
/** Freshness window, as the Rust opener's default: ±10 minutes. */
export const WINDOW_MICROS = 10 * 60 * 1_000_000;

/** Why an envelope did not open; `kind` names the same cases as the Rust `OpenError`. */
export class EnvelopeError extends Error {
  constructor(kind, detail) {
    super(detail ? `${kind}: ${detail}` : kind);
    this.kind = kind;
  }
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function unhex(s) {
  if (s.length % 2 !== 0 || /[^0-9a-fA-F]/.test(s)) throw new Error("not hex");
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function b64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/**
 * An X25519 private key as a CryptoKey that cannot be exported again: the form the console
 * keeps (in IndexedDB) after the identity file is imported.
 */
export async function importPrivateKey(privateRaw, publicRaw, extractable = false) {
  const jwk = { kty: "OKP", crv: "X25519", d: b64url(privateRaw), x: b64url(publicRaw) };
  return crypto.subtle.importKey("jwk", jwk, { name: "X25519" }, extractable, ["deriveBits"]);
}

async function publicKey(raw) {
  return crypto.subtle.importKey("raw", raw, { name: "X25519" }, true, []);
}

async function agree(privateKey, peerRaw) {
  try {
    const bits = await crypto.subtle.deriveBits(
      { name: "X25519", public: await publicKey(peerRaw) },
      privateKey,
      256,
    );
    return new Uint8Array(bits);
  } catch (e) {
    // WebCrypto refuses an all-zero shared secret (a low-order point) with an OperationError.
    throw new EnvelopeError("BadEphemeralKey", String(e));
  }
}

async function messageKey(dhE, dhS, ephemeral, sender, recipient, messageId) {
  const ikm = await crypto.subtle.importKey("raw", concat(dhE, dhS), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: SALT,
      info: concat(ephemeral, sender, recipient, messageId),
    },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

function aadOf(header, subject) {
  const s = te.encode(subject);
  if (s.length > 0xffff) throw new Error("subject too long");
  return concat(header, new Uint8Array([s.length >> 8, s.length & 0xff]), s);
}

function u64be(v) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(v));
  return out;
}

/**
 * Seals `payload` (bytes) on `subject` from the holder of `senderKey` (CryptoKey) and
 * `senderPublic` to `recipientPublic`. The fixed-value options exist for the test vectors;
 * left out, each message gets a fresh ephemeral key, id and nonce from the browser's RNG.
 */
export async function seal({
  senderKey,
  senderPublic,
  recipientPublic,
  subject,
  payload,
  ephemeral, // { privateKey: CryptoKey, publicRaw: Uint8Array }
  messageId,
  nonce,
  timeMicros,
}) {
  if (!ephemeral) {
    const pair = await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
    ephemeral = {
      privateKey: pair.privateKey,
      publicRaw: new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)),
    };
  }
  messageId = messageId ?? crypto.getRandomValues(new Uint8Array(16));
  nonce = nonce ?? crypto.getRandomValues(new Uint8Array(12));
  timeMicros = timeMicros ?? BigInt(Date.now()) * 1000n;
  const dhE = await agree(ephemeral.privateKey, recipientPublic);
  const dhS = await agree(senderKey, recipientPublic);
  const key = await messageKey(dhE, dhS, ephemeral.publicRaw, senderPublic, recipientPublic, messageId);
  const header = concat(
    new Uint8Array([...MAGIC, VERSION, SUITE]),
    senderPublic,
    recipientPublic,
    ephemeral.publicRaw,
    messageId,
    u64be(timeMicros),
    nonce,
  );
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: aadOf(header, subject), tagLength: 128 },
    key,
    payload,
  );
  return concat(header, new Uint8Array(sealed));
}

/**
 * Opens envelopes for the holder of `ownKey`/`ownPublic`, from the senders it trusts (hex
 * public keys), in the order of link/ENVELOPE.md: structure, recipient, sender, then the
 * cryptography, and only for an authentic message freshness and replay.
 */
export class Opener {
  constructor({ ownKey, ownPublic, trusted = [], windowMicros = WINDOW_MICROS, maxIds = 100_000 }) {
    this.ownKey = ownKey;
    this.ownPublic = ownPublic;
    this.trusted = new Set([hex(ownPublic), ...trusted]);
    this.windowMicros = BigInt(windowMicros);
    this.maxIds = maxIds;
    this.seen = new Map(); // message id (hex) -> time, oldest first
    this.floor = 0n; // nothing older is accepted: ids that old may have been forgotten
  }

  /**
   * `{ sender, messageId, timeMicros, payload }`, or throws an EnvelopeError. `stored`: a
   * value kept in a bucket or stream (the status bucket), read again at will: authenticity is
   * checked, freshness and replay are not (as the Rust `open_stored`).
   */
  async open(bytes, subject, nowMicros = BigInt(Date.now()) * 1000n, { stored = false } = {}) {
    bytes = new Uint8Array(bytes);
    if (bytes.length < OVERHEAD) throw new EnvelopeError("Truncated", `${bytes.length} bytes`);
    if (bytes[0] !== MAGIC[0] || bytes[1] !== MAGIC[1]) throw new EnvelopeError("BadMagic");
    if (bytes[2] !== VERSION) throw new EnvelopeError("UnsupportedVersion", String(bytes[2]));
    if (bytes[3] !== SUITE) throw new EnvelopeError("UnsupportedSuite", String(bytes[3]));
    const sender = bytes.slice(4, 36);
    const recipient = bytes.slice(36, 68);
    const ephemeral = bytes.slice(68, 100);
    const messageId = bytes.slice(100, 116);
    const timeMicros = new DataView(bytes.buffer, bytes.byteOffset + 116, 8).getBigUint64(0);
    const nonce = bytes.slice(124, 136);
    if (!equal(recipient, this.ownPublic)) throw new EnvelopeError("WrongRecipient");
    if (!this.trusted.has(hex(sender))) throw new EnvelopeError("UntrustedSender", hex(sender));
    const dhE = await agree(this.ownKey, ephemeral);
    const dhS = await agree(this.ownKey, sender);
    const key = await messageKey(dhE, dhS, ephemeral, sender, recipient, messageId);
    let payload;
    try {
      payload = await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: nonce,
          additionalData: aadOf(bytes.slice(0, HEADER_LEN), subject),
          tagLength: 128,
        },
        key,
        bytes.slice(HEADER_LEN),
      );
    } catch {
      throw new EnvelopeError("Forged");
    }
    if (stored) return { sender, messageId, timeMicros, payload: new Uint8Array(payload) };
    // As link/src/replay.rs: future first, then too old (window or floor), then seen.
    if (timeMicros > nowMicros + this.windowMicros) throw new EnvelopeError("FromTheFuture");
    if (timeMicros + this.windowMicros < nowMicros || timeMicros < this.floor) {
      throw new EnvelopeError("TooOld");
    }
    const id = hex(messageId);
    if (this.seen.has(id)) throw new EnvelopeError("Replayed");
    while (this.seen.size >= this.maxIds) {
      const [oldest, t] = this.seen.entries().next().value;
      this.seen.delete(oldest);
      if (t + 1n > this.floor) this.floor = t + 1n;
    }
    this.seen.set(id, timeMicros);
    return { sender, messageId, timeMicros, payload: new Uint8Array(payload) };
  }
}

/**
 * For the signed-in user `me` (`{ publicHex, key }`: the public key in hex, the private key as a
 * non-extractable CryptoKey): `payload` sealed from `me` to `recipientPublic` (bytes; the
 * user's own key when left out).
 */
export function sealFrom(me, subject, payload, recipientPublic = unhex(me.publicHex)) {
  return seal({ senderKey: me.key, senderPublic: unhex(me.publicHex), recipientPublic, subject, payload });
}

/** An opener of what is sealed to `me`, trusting `me` and the `trusted` (hex) keys. */
export function openerFor(me, trusted = []) {
  return new Opener({ ownKey: me.key, ownPublic: unhex(me.publicHex), trusted });
}
