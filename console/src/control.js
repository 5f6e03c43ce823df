// Remote actions from the console (restart capture, reload policy, report configuration): the
// same sealed `flowmesh.v1.Control` request `flowmesh control` sends, on
// `flowmesh.control.<instance>`, and its sealed `ControlReply` (proto/src/control.rs).

import { Opener, hex, seal, unhex } from "./envelope.js";

const te = new TextEncoder();
const td = new TextDecoder();

function stringField(field, s) {
  const b = te.encode(s);
  const out = [(field << 3) | 2];
  for (let n = b.length; ; n >>>= 7) {
    if (n < 0x80) { out.push(n); break; }
    out.push((n & 0x7f) | 0x80);
  }
  return Uint8Array.from([...out, ...b]);
}

function decodeReply(bytes) {
  const r = { ok: false, error: "", json: "", request_id: "" };
  const names = { 2: "error", 3: "json", 4: "request_id" };
  let i = 0;
  const varint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = bytes[i++];
      if (b === undefined) throw new Error("truncated answer");
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < bytes.length) {
    const key = varint();
    const [field, wire] = [Math.floor(key / 8), key % 8];
    if (wire === 0) {
      const v = varint();
      if (field === 1) r.ok = v !== 0;
    } else if (wire === 2) {
      const len = varint();
      if (names[field]) r[names[field]] = td.decode(bytes.subarray(i, i + len));
      i += len;
    } else {
      throw new Error(`answer: wire type ${wire}`);
    }
  }
  return r;
}

/** Asks `instance` to do `action`; resolves to its `{ ok, error, json }`. */
export async function remoteAction(nc, me, instance, action) {
  const subject = `flowmesh.control.${instance}`;
  const requestId = hex(crypto.getRandomValues(new Uint8Array(8)));
  const body = Uint8Array.from([...stringField(1, action), ...stringField(2, requestId)]);
  const sealed = await seal({
    senderKey: me.key,
    senderPublic: unhex(me.publicHex),
    recipientPublic: unhex(me.publicHex),
    subject,
    payload: body,
  });
  const m = await nc.request(subject, sealed, { timeout: 10_000 });
  const opened = await new Opener({ ownKey: me.key, ownPublic: unhex(me.publicHex) }).open(m.data, `${subject}.reply`);
  const reply = decodeReply(opened.payload);
  if (reply.request_id !== requestId) throw new Error("the answer is not to this request");
  return reply;
}
