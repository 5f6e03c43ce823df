#!/usr/bin/env python3
"""repeat_pcap.py IN OUT N: OUT holds IN's packets N times over, each copy an hour later than the
one before (past every idle timeout, so a copy's flows are new flows rather than old ones run
backwards). Classic little-endian microsecond pcap only, which is what the bench capture is."""
import struct
import sys

src, dst, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(src, "rb").read()
if data[:4] != b"\xd4\xc3\xb2\xa1":
    sys.exit(f"{src}: not a little-endian microsecond pcap")
records, off = [], 24
while off + 16 <= len(data):
    sec, usec, incl, _orig = struct.unpack_from("<IIII", data, off)
    records.append((sec * 1_000_000 + usec, data[off + 8 : off + 16 + incl]))
    off += 16 + incl
span = 3600 * 1_000_000
with open(dst, "wb") as out:
    out.write(data[:24])
    for c in range(copies):
        for t, rest in records:
            t += c * span
            out.write(struct.pack("<II", t // 1_000_000, t % 1_000_000))
            out.write(rest)
print(f"{dst}: {len(records) * copies} packets")
