// Remote actions from the console (update, restart, restart capture, reload policy, report configuration,
// remote assistance): the
// same sealed `flowmesh.v1.Control` request `flowmesh control` sends, on
// `flowmesh.control.<instance>`, and its sealed `ControlReply` (proto/src/control.rs).

import { hex, openerFor, sealFrom } from "./envelope.js";
import { readFields, stringField } from "./proto.js";

const td = new TextDecoder();

function decodeReply(bytes) {
  const r = { ok: false, error: "", json: "", request_id: "" };
  const names = { 2: "error", 3: "json", 4: "request_id" };
  readFields(bytes, (field, value) => {
    if (field === 1 && typeof value === "number") r.ok = value !== 0;
    else if (names[field] && typeof value !== "number") r[names[field]] = td.decode(value);
  });
  return r;
}

/** Asks `instance` to do `action` (with `args`, JSON, if any); resolves to its
 *  `{ ok, error, json }`. */
export async function remoteAction(nc, me, instance, action, args = "") {
  const subject = `flowmesh.control.${instance}`;
  const requestId = hex(crypto.getRandomValues(new Uint8Array(8)));
  const body = Uint8Array.from([
    ...stringField(1, action),
    ...stringField(2, requestId),
    ...(args ? stringField(3, args) : []),
    ...stringField(4, "console"),
  ]);
  const sealed = await sealFrom(me, subject, body);
  const m = await nc.request(subject, sealed, { timeout: 10_000 });
  const opened = await openerFor(me).open(m.data, `${subject}.reply`);
  const reply = decodeReply(opened.payload);
  if (reply.request_id !== requestId) throw new Error("the answer is not to this request");
  return reply;
}
