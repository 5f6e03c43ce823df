#!/usr/bin/env bash
# deploy/bench-flows.sh [FLOWS]
#
# Speed and memory of `flowmesh flows` on a synthetic capture of FLOWS flows (default 1M, about
# 9M packets, all in progress at once so the flow table holds every one), compared with
# Debian's ndpiReader on the same file and with a bare libpcap read loop (the floor). Also runs
# the 100k-packet nDPI bench capture when ../shared/pcaps/bench is present, and that capture ten
# times over (1M packets); flowmesh on one thread and on two flow workers. Prints wall time,
# packets/s, flows/s and peak RSS (bytes per flow = RSS / FLOWS).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=deploy/common.sh
. deploy/common.sh
flows=${1:-1000000}
ensure_system_packages
ensure_apt libndpi-bin time
ensure_rust
cargo build --release --locked --bin flowmesh >/dev/null
bin="${CARGO_TARGET_DIR:-target}/release/flowmesh"
work="${FLOWMESH_HOME}/bench"; mkdir -p "$work"
cc -O2 -o "$work/pcap_loop" deploy/bench/pcap_loop.c -lpcap
file="$work/gen-$flows.pcap"
[ -f "$file" ] || "$bin" -q gen --flows "$flows" --concurrent "$flows" --out "$file"
packets=$("$work/pcap_loop" "$file" | awk '{print $1}')

measure() { # NAME COMMAND...: best wall time of 3 runs and its peak RSS
  local name=$1; shift
  local best=999999 rss=0 t r
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o "$work/t" "$@" >/dev/null 2>&1 || true
    read -r t r < "$work/t"
    if awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; rss=$r; fi
  done
  awk -v n="$name" -v t="$best" -v r="$rss" -v p="$packets" -v f="$flows" \
    'BEGIN{printf "  %-22s %7.2f s %10.0f pkt/s %9.0f flows/s  peak RSS %7.1f MB (%.0f B/flow)\n", n, t, p/t, f/t, r/1024, r*1024/f}'
}
echo "synthetic capture: $packets packets, $flows flows ($file)"
measure "libpcap read loop" "$work/pcap_loop" "$file"
measure "flowmesh flows" "$bin" -q flows --threads 1 "$file"
measure "flowmesh flows -t 2" "$bin" -q flows --threads 2 "$file"
measure "ndpiReader -i" ndpiReader -q -i "$file"
bench=../shared/pcaps/bench/ndpi_merged_ether.pcap
if [ -f "$bench" ]; then
  packets=$("$work/pcap_loop" "$bench" | awk '{print $1}')
  flows=$("$bin" -q flows "$bench" | wc -l)
  echo "nDPI bench capture: $packets packets, $flows flows"
  file=$bench
  measure "libpcap read loop" "$work/pcap_loop" "$bench"
  measure "flowmesh flows" "$bin" -q flows --threads 1 "$bench"
  measure "flowmesh flows -t 2" "$bin" -q flows --threads 2 "$bench"
  measure "ndpiReader -i" ndpiReader -q -i "$bench"
  # Issue 14's capture: the bench capture ten times over (1M packets), each copy an hour later.
  file="$work/bench10.pcap"
  [ -f "$file" ] || python3 deploy/bench/repeat_pcap.py "$bench" "$file" 10 >/dev/null
  packets=$("$work/pcap_loop" "$file" | awk '{print $1}')
  flows=$("$bin" -q flows "$file" | wc -l)
  echo "nDPI bench capture x10: $packets packets, $flows flows"
  measure "libpcap read loop" "$work/pcap_loop" "$file"
  measure "flowmesh flows" "$bin" -q flows --threads 1 "$file"
  measure "flowmesh flows -t 2" "$bin" -q flows --threads 2 "$file"
fi
