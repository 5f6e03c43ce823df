// Requests to the user's collectors over NATS (collector/src/api/nats.rs): JSON sealed with
// the user's key to the collector's subject, the answer sealed back to `flowmesh.api.reply`
// and matched by a random id. `discover` asks every collector at once.

import { hex, openerFor, sealFrom } from "./envelope.js";

const te = new TextEncoder();
const td = new TextDecoder();
const REPLY = "flowmesh.api.reply";

function sealer(me) {
  return (subject, body) => sealFrom(me, subject, te.encode(JSON.stringify(body)));
}

export class Collectors {
  constructor(nc, me) {
    this.nc = nc;
    this.seal = sealer(me);
    this.opener = openerFor(me);
  }

  async open(m, id) {
    const o = await this.opener.open(m.data, REPLY);
    const a = JSON.parse(td.decode(o.payload));
    if (a.id !== id) throw new Error("an answer to another request");
    return a;
  }

  static id() {
    return hex(crypto.getRandomValues(new Uint8Array(8)));
  }

  /** The names of the collectors that answer within `ms`. */
  async discover(ms = 1500) {
    const id = Collectors.id();
    const sealed = await this.seal("flowmesh.api", { id, op: "hello" });
    const names = [];
    try {
      const answers = await this.nc.requestMany("flowmesh.api", sealed, { maxWait: ms });
      for await (const m of answers) {
        try {
          const a = await this.open(m, id);
          if (a.ok) names.push(a.collector);
        } catch (e) {
          console.warn(`discover: ${e.message}`);
        }
      }
    } catch (e) {
      console.warn(`discover: ${e.message}`);
    }
    return [...new Set(names)].sort();
  }

  /** `op` on `collector`; its result, or throws with the collector's error. */
  async call(collector, op, fields = {}, timeout = 10_000) {
    const id = Collectors.id();
    const subject = `flowmesh.api.${collector}`;
    const m = await this.nc.request(subject, await this.seal(subject, { id, op, ...fields }), { timeout });
    const a = await this.open(m, id);
    if (!a.ok) throw new Error(a.error);
    return a.result;
  }
}
