#!/usr/bin/env bash
# Regenerates broker-config/reference/ from broker-config/topology.toml, with throwaway user
# identities. Only the nats-server configs (with the public operator and SYS/CLOUD account JWTs),
# operator.jwt and the node list are committed;
# keys, credentials and certificates belong to each deployment.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${FLOWMESH_BIN:-target/release/flowmesh}
[ -x "$bin" ] || cargo build --release --locked
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp broker-config/topology.toml "$tmp/"
"$bin" -q keygen --out "$tmp/alice.id" >/dev/null
"$bin" -q keygen --out "$tmp/bob.id" >/dev/null
rm -rf broker-config/reference
"$bin" -q broker init --topology "$tmp/topology.toml" --out broker-config/reference >/dev/null
# Keys, seeds and certificates are per deployment: commit only the configs and the node list.
rm -rf broker-config/reference/secrets broker-config/reference/creds broker-config/reference/accounts broker-config/reference/ca.pem broker-config/reference/nodes/*.pem broker-config/reference/topology.toml
echo "regenerated broker-config/reference"
