// A heartbeat (`flowmesh.v1.Status`, protobuf) decoded in the browser: the few fields the
// Instances page shows. Unknown fields are skipped, as protobuf wants.

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
  let i = 0;
  const varint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (i >= bytes.length) throw new Error("truncated heartbeat");
      const b = bytes[i++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  const td = new TextDecoder();
  while (i < bytes.length) {
    const key = varint();
    const [field, wire] = [Math.floor(key / 8), key % 8];
    const [name, kind] = FIELDS[field] ?? [];
    if (wire === 0) {
      const v = varint();
      if (kind === "int") out[name] = v;
    } else if (wire === 2) {
      const len = varint();
      const s = bytes.subarray(i, i + len);
      i += len;
      if (kind === "string") out[name] = td.decode(s);
      if (kind === "strings") out.interfaces.push(td.decode(s));
    } else if (wire === 1) {
      i += 8;
    } else if (wire === 5) {
      i += 4;
    } else {
      throw new Error(`heartbeat: wire type ${wire}`);
    }
  }
  return out;
}
