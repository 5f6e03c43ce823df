#!/usr/bin/env bash
# ./deploy/quickstart.sh [--smoke] [--down]
#
# From a fresh Debian machine to the running pipeline, in one command: installs what is missing
# (libpcap, nats-server 2.15 in a venv), builds flowmesh, generates user keys, certificates and
# configs into ./run, starts the federated cluster (eu: 3 nodes, us: 2; TLS 1.3 only; an account
# per user), shows a sealed hello crossing regions, then starts alice's collector (in us) and two
# sensors (one per region, replaying a generated capture in real time, looping) with a sample
# policy, `flowmesh watch`, and the cloud manager (instance registry, shared blacklist); alerts
# and status changes appear within a minute.
#   --smoke  the same for a bounded time: prints what watch received, stops one sensor to see it
#            go offline, tears everything down, and exits non-zero unless alerts and status
#            changes arrived.
#   --down   stop the pipeline and the cluster.
# Safe to run again: it reuses ./run. FLOWMESH_RUN=DIR puts the run directory elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=deploy/common.sh
. deploy/common.sh

down= smoke=
for a in "$@"; do
  case "$a" in
    --down) down=1 ;;
    --smoke) smoke=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown option $a (see --help)" ;;
  esac
done

run=${FLOWMESH_RUN:-run}
pipe="$run/pipeline"
cluster="$run/cluster"

stop_pipeline() { # the daemons started below: SIGTERM, then SIGKILL after 10 s
  local f pid
  for f in "$pipe"/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}

if [ -n "$down" ] && [ -z "$smoke" ]; then
  stop_pipeline
  if [ -f "$cluster/nodes.tsv" ]; then deploy/cluster.sh down "$cluster"; fi
  exit 0
fi

ensure_all
# softflowd: the NetFlow/IPFIX exporter the demo replays as a third source.
ensure_apt softflowd
ensure_console_build
log "building flowmesh (release, with the web console)"
cargo build --release --locked --bin flowmesh
bin="$(pwd)/${CARGO_TARGET_DIR:-target}/release/flowmesh"
[ -x "$bin" ] || bin="${CARGO_TARGET_DIR:-target}/release/flowmesh"

mkdir -p "$run"
for user in alice bob; do
  [ -f "$run/$user.id" ] || "$bin" -q keygen --out "$run/$user.id" >/dev/null
done
# The cloud's key and signing key (a run from before signing keys existed is redone).
if [ ! -f "$run/cloud.id" ] || ! grep -q _signkey "$run/cloud-txt-record" 2>/dev/null; then
  "$bin" -q keygen --cloud --force --domain example.org --out "$run/cloud.id" > "$run/cloud-txt-record"
fi
cloud_key=$(sed -n 's/^cloud\._pubkey.*TXT "\([0-9a-f]\{64\}\)".*/\1/p' "$run/cloud-txt-record")
cloud_signing_key=$(sed -n 's/^cloud\._signkey.*TXT "\([0-9a-f]\{64\}\)".*/\1/p' "$run/cloud-txt-record")
# The release signing key (kept apart from the manager in real life); instances pin its public
# half. A run from before software updates (no release.pub) also gets new instance credentials.
if [ ! -f "$run/release.pub" ]; then
  rm -f "$run/release.key"
  [ -f "$cluster/nodes.tsv" ] && rm -f "$cluster/operator.jwt"
  "$bin" -q release keygen --out "$run/release.key" --domain example.org > "$run/release-txt-record"
  sed -n 's/.*TXT "\([0-9a-f]\{64\}\)".*/\1/p' "$run/release-txt-record" > "$run/release.pub"
fi
release_key=$(cat "$run/release.pub")
if [ -f "$cluster/nodes.tsv" ] && { [ ! -f "$cluster/operator.jwt" ] || [ ! -f "$cluster/nodes/console.pem" ]; }; then
  log "$cluster predates operator mode, the web console or software updates: generating it again"
  stop_pipeline
  deploy/cluster.sh down "$cluster"
  rm -rf "$cluster"
fi
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
  # The console takes the block's last port; its origin is the one the nodes' WebSockets allow.
  sed -e "s/^base_port = .*/base_port = $base/" \
    -e "s|^console_origin = .*|console_origin = \"https://127.0.0.1:$((base + 49))\"|" \
    broker-config/topology.toml > "$run/topology.toml"
  log "generating CA, certificates, node configs and credentials into $cluster"
  "$bin" -q broker init --topology "$run/topology.toml" --out "$cluster" >/dev/null
fi
deploy/cluster.sh up "$cluster"
log "pushing the users' accounts to the cluster (operator mode: never in a node's config)"
"$bin" -q broker push --cluster "$cluster"

urls() { awk -F'\t' -v r="$1" '!/^#/ && $2==r {printf " --url %s", $4}' "$cluster/nodes.tsv"; }
log "a sealed hello: alice's eu-sensor (region eu) to her us-collector (region us)"
# shellcheck disable=SC2046
"$bin" -q hello listen --identity "$run/alice.id" --broker "$cluster/creds/alice/us-collector.toml" \
  $(urls us) --instance us-collector --timeout 60 > "$run/hello-received.json" &
listener=$!
# shellcheck disable=SC2046
"$bin" -q hello send --identity "$run/alice.id" --broker "$cluster/creds/alice/eu-sensor.toml" \
  $(urls eu) --instance eu-sensor --text "hello from eu, sealed for alice only" --timeout 60 > "$run/hello-answer.json"
wait "$listener"
echo "received in us (opened with alice's key): $(cat "$run/hello-received.json")"
echo "answer back in eu: $(cat "$run/hello-answer.json")"
echo

# ---- the pipeline: a collector in us, a sensor in each region, and watch ----------------------
mkdir -p "$pipe"
stop_pipeline # a previous run's daemons, if any
if [ ! -f "$pipe/traffic.pcap" ]; then
  "$bin" -q gen --flows 3000 --concurrent 300 --span 120 --out "$pipe/traffic.pcap"
fi
cat > "$pipe/policy.toml" <<'TOML'
# The sample policy: DNS and HTTPS are allowed, anything else is an ACL violation; and the
# hosts of 10.0.0.0/24 are restricted: only the whitelisted 203.0.113.0/24 servers are theirs.
[acl]
rules = """
UDP;*;*;53
TCP;*;*;443
"""

[host_policy]
restricted = ["10.0.0.0/24"]
whitelisted = ["203.0.113.0/24"]

# Traffic profiles: every stored flow carries the names of those it matches (the console's
# Flows page shows them as badges; `flowmesh flows-search --profile web`).
[[profile]]
name = "web"
bpf = "tcp port 443 or tcp port 80"

[[profile]]
name = "dns"
bpf = "udp port 53"
TOML
# The [broker] table of an instance; its region is pinned to the prefix of its name (eu-…,
# us-…): on one machine every region is as near as any other, so measuring decides nothing.
broker_of() { # INSTANCE: its [broker] table, pinned to the region its name starts with
  sed -n '/^\[broker\]/,$p' "$cluster/creds/alice/$1.toml" | sed "/^\[broker\]\$/a region = \"${1%%-*}\""
}
{
  echo 'name = "us-collector"'
  echo 'identity = "../alice.id"'
  echo 'store = "us-collector.redb"'
  echo 'policy = "policy.toml"'
  echo 'replicas = 3'
  broker_of us-collector
  echo
  echo '[cloud]                 # the cloud keys; with DNS: domain = "example.org"'
  echo "pinned = \"$cloud_key\""
  echo "pinned_signing = \"$cloud_signing_key\""
} > "$pipe/us-collector.toml"
console_origin=$(sed -n 's/^console_origin = "\(.*\)"/\1/p' "$run/topology.toml")
console_port=${console_origin##*:}
{
  echo 'identity = "../cloud.id"'
  echo 'cluster = "../cluster"'
  echo 'rebroadcast_secs = 10'
  echo '[console]'
  echo "listen = \"127.0.0.1:$console_port\""
  echo 'url_file = "console.url"'
  sed -n '/^\[broker\]/,$p' "$cluster/creds/CLOUD/manager.toml"
  echo
  sed -n '/^\[broker\]/,$p' "$cluster/creds/SYS/manager.toml" | sed 's/^\[broker\]/[system]/; s/^\[broker\.regions\]/[system.regions]/'
} > "$pipe/manager.toml"
# us-sensor also receives NetFlow/IPFIX (a third source: softflowd below, as a router would).
netflow_port=$(( $(sed -n 's/^base_port = //p' "$run/topology.toml") + 48 ))
for s in eu-sensor us-sensor; do
  {
    echo "name = \"$s\""
    echo 'identity = "../alice.id"'
    echo "state_dir = \"$s-state\""
    broker_of "$s"
    echo
    echo '[capture]'
    echo 'file = "traffic.pcap"'
    [ "$s" = us-sensor ] && echo "netflow = \"127.0.0.1:$netflow_port\""
    echo 'speed = 1'
    echo 'loop = true'
    echo 'active_timeout_secs = 30'
    echo
    echo '[publish]'
    echo 'heartbeat_secs = 2'
    echo
    echo '[update]                # software updates: releases signed with this key only'
    echo "release_key = \"$release_key\""
  } > "$pipe/$s.toml"
done
# The sensors run from a binary of their own, which an update replaces (stripped: a release
# carries no debug info).
mkdir -p "$pipe/bin"
cp "$bin" "$pipe/bin/flowmesh.tmp" && strip "$pipe/bin/flowmesh.tmp" && mv "$pipe/bin/flowmesh.tmp" "$pipe/bin/flowmesh"
{
  echo '# flowmesh watch: a watch client (reads alerts, status changes and the bucket only)'
  echo 'identity = "../alice.id"'
  broker_of eu-watch
} > "$pipe/watch.toml"
start_daemon() { # NAME ARGS...: in the background; stdout, stderr and pid in $pipe
  local name=$1; shift
  local exe=$bin
  [ "$1" = sensor ] && exe="$pipe/bin/flowmesh"
  setsid nohup "$exe" "$@" >"$pipe/$name.out" 2>"$pipe/$name.log" </dev/null &
  echo $! > "$pipe/$name.pid"
}
start_daemon manager manager --config "$pipe/manager.toml"
start_daemon watch watch --config "$pipe/watch.toml"
start_daemon us-collector collector --config "$pipe/us-collector.toml"
start_daemon eu-sensor sensor --config "$pipe/eu-sensor.toml"
start_daemon us-sensor sensor --config "$pipe/us-sensor.toml"
log "pipeline started: collector us-collector, sensors eu-sensor and us-sensor, watch (logs in $pipe)"

events="$pipe/watch.out"
count() { grep -c -E "$1" "$events" 2>/dev/null || true; }
is_alert='"type":"(acl_violation|host_policy)"'
is_change='"type":"instance_status"'
log "waiting (up to 60 s) for alerts and status changes in flowmesh watch"
for _ in $(seq 1 120); do
  if [ "$(count "$is_change")" -gt 0 ] && [ "$(count "$is_alert")" -gt 0 ]; then break; fi
  sleep 0.5
done
alerts=$(count "$is_alert")
changes=$(count "$is_change")
echo
echo "flowmesh watch received $alerts alerts and $changes status changes; the first ones:"
grep -E "$is_change" "$events" | head -3 || true
grep -E "$is_alert" "$events" | head -3 | cut -c1-300 || true
echo
echo "flowmesh instances (the collector's API):"
listed=0
if "$bin" -q instances --config "$pipe/us-collector.toml"; then listed=1; fi
echo
echo "flowmesh cloud instances (the manager: connections only, nothing it can read):"
"$bin" -q cloud instances --config "$pipe/manager.toml" | tee "$pipe/cloud-instances.out" || true
echo
# The web console, as a browser sees it: HTTPS with the cluster's CA, its page and its config.
console_check() {
  python3 - "$pipe/console.url" "$cluster/ca.pem" <<'PY'
import json, ssl, sys, time, urllib.request
url_file, ca = sys.argv[1], sys.argv[2]
for _ in range(60):
    try:
        url = open(url_file).read().strip()
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("the manager did not write its console URL")
ctx = ssl.create_default_context(cafile=ca)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
page = urllib.request.urlopen(url, context=ctx, timeout=10).read().decode()
cfg = json.load(urllib.request.urlopen(url + "api/config", context=ctx, timeout=10))
assert "console.js" in page, "the console page does not load its script"
assert len(cfg["nodes"]) == 5, cfg
print(f"web console: {url} (TLS 1.3, {len(cfg['nodes'])} WebSocket nodes: {', '.join(n['url'] for n in cfg['nodes'][:2])}, ...)")
PY
}
console_ok=0
if console_check; then console_ok=1; fi
echo

echo "flowmesh report-ip 185.220.101.1 (sealed to the cloud's key; alice's collectors apply it at once, other users once a second user or the operator confirms it):"
reported=0
if "$bin" -q report-ip --config "$pipe/us-collector.toml" 185.220.101.1 --reason "quickstart demo"; then reported=1; fi
"$bin" -q cloud blacklist --config "$pipe/manager.toml" || true
echo

# The flow store: every flow the collectors received, searchable.
echo "flowmesh flows-search --top apps, then the newest flow of profile web to port 443 (us-collector's flow store):"
searched=0
"$bin" -q flows-search --config "$pipe/us-collector.toml" --top apps --limit 5 || true
# A web flow of a given port, with its profile (TCP flows are reported at their FIN; UDP ones,
# such as DNS, only after the sensor's idle timeout, minutes later).
for _ in $(seq 1 60); do
  web=$("$bin" -q flows-search --config "$pipe/us-collector.toml" --profile web --port 443 --limit 1 || true)
  case "$web" in *'"server_port":443'*'"profiles":["web"]'*) searched=1; echo "$web"; break ;; esac
  sleep 1
done
echo

# Remote assistance: the owner opens a 10-minute admin session on the collector; a support
# engineer with only the key reaches its API through the cloud; the owner ends it.
echo "flowmesh assist enable (a support engineer may reach us-collector's API for 10 minutes, as admin):"
assisted=0
rm -f "$pipe/assist.json"
if key=$("$bin" -q assist enable --config "$pipe/us-collector.toml" --instance us-collector --admin --ttl 10m); then
  echo "${key:0:60}… (one line: the assistance key)"
  echo "$key" | setsid nohup "$bin" assist connect - --access-file "$pipe/assist.json" \
    >"$pipe/assist.out" 2>"$pipe/assist.log" &
  echo $! > "$pipe/assist.pid"
  for _ in $(seq 1 40); do [ -s "$pipe/assist.json" ] && break; sleep 0.5; done
  echo "flowmesh instances --access $pipe/assist.json (the support engineer, through the tunnel):"
  if "$bin" -q instances --access "$pipe/assist.json"; then assisted=1; fi
  "$bin" -q assist status --config "$pipe/us-collector.toml" --instance us-collector || true
  "$bin" -q assist disable --config "$pipe/us-collector.toml" --instance us-collector || assisted=0
  kill "$(cat "$pipe/assist.pid")" 2>/dev/null || true
fi
echo

# Flows from an exporter: softflowd replays the capture as IPFIX to us-sensor's NetFlow port;
# the records reach the collector's checks and store with their `exporter` (a replayed capture's
# flows keep its dates, so the store's 7-day retention drops them at its next upkeep).
echo "softflowd exports the capture as IPFIX to us-sensor (127.0.0.1:$netflow_port), then flows-search finds them:"
exported=0
rm -f "$pipe/softflowd.ctl"
softflowd -r "$pipe/traffic.pcap" -n "127.0.0.1:$netflow_port" -v 10 -A milli -d \
  -p "$pipe/softflowd.pid" -c "$pipe/softflowd.ctl" >"$pipe/softflowd.log" 2>&1 &
sfd=$!
# softflowd 1.1.0 reading a file waits for a control connection before each round: knock.
for _ in $(seq 1 300); do
  kill -0 "$sfd" 2>/dev/null || break
  softflowctl -c "$pipe/softflowd.ctl" statistics >/dev/null 2>&1 || true
  sleep 0.1
done
kill "$sfd" 2>/dev/null || true
for _ in $(seq 1 60); do
  hit=$("$bin" -q flows-search --config "$pipe/us-collector.toml" --instance us-sensor --port 443 --to 1d --limit 5 | grep -m1 '"exporter":"127.0.0.1"' || true)
  if [ -n "$hit" ]; then exported=1; echo "$hit" | cut -c1-320; break; fi
  sleep 1
done
echo

# A software update: the operator publishes a signed release (this build, stamped one patch
# version up), and alice updates eu-sensor, in the other region, from us-collector's config.
running=$("$pipe/bin/flowmesh" --version | awk '{print $2}')
IFS=. read -r major minor patch <<<"${running%%[-+]*}"
next="$major.$minor.$((patch + 1))-quickstart"
echo "flowmesh release publish $next, then control --instance eu-sensor update (signed, verified, installed, restarted):"
updated=0
if "$bin" -q release stamp "$pipe/bin/flowmesh" --version "$next" --out "$pipe/flowmesh-$next" 2>/dev/null \
  && "$bin" -q release publish "$pipe/flowmesh-$next" --version "$next" --key "$run/release.key" \
       --config "$pipe/manager.toml" --replicas 2 --notes "quickstart demo" >/dev/null \
  && "$bin" -q control --config "$pipe/us-collector.toml" --instance eu-sensor update --version "$next"; then
  now=$("$bin" -q control --config "$pipe/us-collector.toml" --instance eu-sensor version || true)
  case "$now" in *"\"$next\""*) updated=1; echo "eu-sensor now runs $next" ;; esac
fi
echo

if [ -n "$smoke" ]; then
  log "smoke: stopping eu-sensor; watch must show it stopping, then offline"
  kill -TERM "$(cat "$pipe/eu-sensor.pid")" 2>/dev/null || true
  offline=0
  for _ in $(seq 1 60); do
    if grep -q '"instance":"eu-sensor".*"status":"offline"' "$events"; then offline=1; break; fi
    sleep 0.5
  done
  grep '"instance":"eu-sensor"' "$events" | grep -E "$is_change" | tail -3 || true
  stop_pipeline
  deploy/cluster.sh down "$cluster"
  echo
  cloud_listed=0
  # Each sensor listed in its own region (the nearest), the watch client not at all.
  if grep -qE "^alice +eu-sensor +sensor +[a-z]+ +eu " "$pipe/cloud-instances.out" \
    && grep -qE "^alice +us-sensor +sensor +[a-z]+ +us " "$pipe/cloud-instances.out" \
    && ! grep -q "eu-watch" "$pipe/cloud-instances.out"; then cloud_listed=1; fi
  if [ "$alerts" -gt 0 ] && [ "$changes" -gt 0 ] && [ "$offline" = 1 ] && [ "$listed" = 1 ] \
    && [ "$cloud_listed" = 1 ] && [ "$reported" = 1 ] && [ "$console_ok" = 1 ] && [ "$assisted" = 1 ] && [ "$searched" = 1 ] && [ "$updated" = 1 ] && [ "$exported" = 1 ]; then
    echo "SMOKE OK: $alerts alerts, $changes status changes, eu-sensor went offline, the API listed the instances, the manager saw them, a report reached the cloud, the web console answered, remote assistance reached the API, the flow store answered searches, eu-sensor was updated to $next, softflowd's IPFIX export reached the store"
    exit 0
  fi
  echo "SMOKE FAILED: alerts=$alerts status_changes=$changes eu_sensor_offline=$offline api_listed=$listed cloud_listed=$cloud_listed reported=$reported console=$console_ok assisted=$assisted searched=$searched updated=$updated exported=$exported (logs in $pipe)" >&2
  exit 1
fi

echo "The web console: $(cat "$pipe/console.url" 2>/dev/null)"
echo "  Your browser must trust the cluster's CA once (the console and the nodes' WebSockets use it):"
echo "  import $(pwd)/$cluster/ca.pem as an authority (Chromium: Settings > Privacy and security >"
echo "  Security > Manage certificates > Authorities > Import; Firefox: Settings > Certificates)."
echo "  Then sign in with alice's identity file, $(pwd)/$run/alice.id, or sign up as a new user."
echo
echo "The pipeline keeps running. Follow it live:"
echo "  $bin watch --config $pipe/watch.toml"
echo "Ask the manager:    $bin cloud instances --config $pipe/manager.toml"
echo "Ask the collector:  $bin instances --config $pipe/us-collector.toml"
echo "                    $bin alerts --config $pipe/us-collector.toml --limit 5"
echo "                    $bin policy acl list --config $pipe/us-collector.toml"
echo "Stop a sensor and watch it go stopping, then offline:  kill \$(cat $pipe/eu-sensor.pid)"
echo "Stop everything:  ./deploy/quickstart.sh --down"
