// A heartbeat (`flowmesh.v1.Status`, protobuf) decoded in the browser: the few fields the
// Instances page shows. Unknown fields are skipped, as protobuf wants.

import { readFields } from "./proto.js";

const FIELDS = {
  1: ["instance", "string"],
  2: ["status", "string"],
  4: ["time_us", "int"],
  5: ["version", "string"],
  6: ["uptime_s", "int"],
  8: ["interfaces", "strings"],
  9: ["packets_captured", "int"],
  10: ["packets_dropped", "int"],
  11: ["outbox_depth", "int"],
  13: ["flows_published", "int"],
  14: ["heartbeat_ms", "int"],
};

export function decodeStatus(bytes) {
  // proto3 leaves zeros out: a counter not on the wire is 0.
  const out = { interfaces: [] };
  for (const [name, kind] of Object.values(FIELDS)) if (kind === "int") out[name] = 0;
  const td = new TextDecoder();
  readFields(bytes, (field, value) => {
    const [name, kind] = FIELDS[field] ?? [];
    if (kind === "int" && typeof value === "number") out[name] = value;
    if (kind === "string" && typeof value !== "number") out[name] = td.decode(value);
    if (kind === "strings" && typeof value !== "number") out.interfaces.push(td.decode(value));
  });
  return out;
}
