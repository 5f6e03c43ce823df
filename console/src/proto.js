// Reading and writing the few protobuf messages the console handles itself (a heartbeat, a
// remote action and its answer): varints and length-delimited fields, nothing more. Fields
// are handed to the caller as they come; unknown ones are skipped, as protobuf wants.

const te = new TextEncoder();

/** Calls `onField(field, value)` for each field: a number (varint) or bytes (length-delimited). */
export function readFields(bytes, onField) {
  let i = 0;
  const varint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = bytes[i++];
      if (b === undefined) throw new Error("truncated message");
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < bytes.length) {
    const key = varint();
    const [field, wire] = [Math.floor(key / 8), key % 8];
    if (wire === 0) {
      onField(field, varint());
    } else if (wire === 2) {
      const len = varint();
      if (i + len > bytes.length) throw new Error("truncated message");
      onField(field, bytes.subarray(i, i + len));
      i += len;
    } else if (wire === 1) {
      i += 8;
    } else if (wire === 5) {
      i += 4;
    } else {
      throw new Error(`wire type ${wire}`);
    }
  }
}

/** A string field, encoded. */
export function stringField(field, s) {
  const b = te.encode(s);
  const out = [(field << 3) | 2];
  for (let n = b.length; ; n >>>= 7) {
    if (n < 0x80) {
      out.push(n);
      break;
    }
    out.push((n & 0x7f) | 0x80);
  }
  return Uint8Array.from([...out, ...b]);
}
