#!/usr/bin/env bash
# ./deploy/quickstart.sh [--down]
#
# From a fresh Debian machine to a running federated cluster, in one command: installs what is
# missing (libpcap, nats-server 2.15 in a venv), builds flowmesh, generates user keys,
# certificates and configs into ./run, starts the cluster (eu: 3 nodes, us: 2; TLS 1.3 only;
# an account per user) and shows a message sealed by an instance in `eu` being opened and
# answered by an instance of the same user in `us`. Safe to run again: it reuses ./run.
# --down stops the cluster at the end. FLOWMESH_RUN=DIR puts the run directory elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=deploy/common.sh
. deploy/common.sh

down=
for a in "$@"; do
  case "$a" in
    --down) down=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown option $a (see --help)" ;;
  esac
done

ensure_all
log "building flowmesh (release)"
cargo build --release --locked --bin flowmesh
bin="${CARGO_TARGET_DIR:-target}/release/flowmesh"

run=${FLOWMESH_RUN:-run}
mkdir -p "$run"
for user in alice bob; do
  [ -f "$run/$user.id" ] || "$bin" -q keygen --out "$run/$user.id" >/dev/null
done
cluster="$run/cluster"
if [ ! -f "$cluster/nodes.tsv" ]; then
  # The reference topology, moved to a block of 50 ports that is free on this machine.
  base=$(python3 - <<'PY'
import socket
for base in range(14222, 60000, 1000):
    try:
        socks = []
        for p in range(base, base + 50):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
        print(base); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
PY
)
  sed "s/^base_port = .*/base_port = $base/" broker-config/topology.toml > "$run/topology.toml"
  log "generating CA, certificates, node configs and credentials into $cluster"
  "$bin" -q broker init --topology "$run/topology.toml" --out "$cluster" >/dev/null
fi
deploy/cluster.sh up "$cluster"

urls() { awk -F'\t' -v r="$1" '!/^#/ && $2==r {printf " --url %s", $4}' "$cluster/nodes.tsv"; }
log "alice's us-collector listens in region us; alice's eu-sensor sends from region eu"
# shellcheck disable=SC2046
"$bin" -q hello listen --identity "$run/alice.id" --broker "$cluster/creds/alice/us-collector.toml" \
  $(urls us) --instance us-collector --timeout 60 > "$run/hello-received.json" &
listener=$!
# shellcheck disable=SC2046
"$bin" -q hello send --identity "$run/alice.id" --broker "$cluster/creds/alice/eu-sensor.toml" \
  $(urls eu) --instance eu-sensor --text "hello from eu, sealed for alice only" --timeout 60 > "$run/hello-answer.json"
wait "$listener"
echo
echo "received in us (opened with alice's key):"
cat "$run/hello-received.json"
echo "answer back in eu:"
cat "$run/hello-answer.json"
echo
if [ -n "$down" ]; then
  deploy/cluster.sh down "$cluster"
else
  echo "The cluster keeps running. Status: deploy/cluster.sh status $cluster"
  echo "                            Stop:   deploy/cluster.sh down $cluster"
fi
