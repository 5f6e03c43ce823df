// The user's identity file — the same TOML `flowmesh keygen` writes — made, read and checked
// in the browser. The private key's bytes exist here only while a file is written or read;
// what is kept is a non-extractable CryptoKey (store.js).

import { hex, unhex, importPrivateKey } from "./envelope.js";

const BASE_POINT = new Uint8Array(32);
BASE_POINT[0] = 9;

function b64urlToBytes(s) {
  const b = atob(s.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

/** A fresh X25519 key pair from the browser's RNG: `{ publicRaw, privateRaw }`. */
export async function generateIdentity() {
  const pair = await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
  const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
  return { publicRaw: b64urlToBytes(jwk.x), privateRaw: b64urlToBytes(jwk.d) };
}

/** The identity file's text, byte for byte what `flowmesh keygen` writes. */
export function formatIdentity(publicRaw, privateRaw) {
  const pub = hex(publicRaw);
  return (
    "# flowmesh user identity. PRIVATE: keep mode 0600, copy only to your own instances.\n" +
    `kind = "user"\nuser_id = "${pub}"\npublic_key = "${pub}"\nprivate_key = "${hex(privateRaw)}"\n`
  );
}

/** Reads an identity file; throws with what is wrong (line numbers included). */
export function parseIdentity(text) {
  const fields = {};
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (!t || t.startsWith("#")) return;
    const m = /^([a-z_]+)\s*=\s*"([^"]*)"$/.exec(t);
    if (!m) throw new Error(`line ${i + 1}: not key = "value"`);
    fields[m[1]] = m[2];
  });
  if (fields.kind !== "user") {
    throw new Error(`kind is ${JSON.stringify(fields.kind)}: give a user identity (flowmesh keygen)`);
  }
  for (const k of ["public_key", "private_key"]) {
    if (!/^[0-9a-f]{64}$/i.test(fields[k] ?? "")) throw new Error(`${k} must be 64 hexadecimal characters`);
  }
  if ((fields.user_id ?? "").toLowerCase() !== fields.public_key.toLowerCase()) {
    throw new Error("user_id must equal public_key");
  }
  return { publicRaw: unhex(fields.public_key), privateRaw: unhex(fields.private_key) };
}

/**
 * The private key as a non-extractable CryptoKey, after checking that it belongs to the public
 * key (X25519 of the private key and the base point is the public key).
 */
export async function importIdentity({ publicRaw, privateRaw }) {
  const key = await importPrivateKey(privateRaw, publicRaw, false);
  const base = await crypto.subtle.importKey("raw", BASE_POINT, { name: "X25519" }, true, []);
  const derived = new Uint8Array(await crypto.subtle.deriveBits({ name: "X25519", public: base }, key, 256));
  if (hex(derived) !== hex(publicRaw)) throw new Error("public_key does not belong to private_key");
  return key;
}
