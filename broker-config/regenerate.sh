#!/usr/bin/env bash
# Regenerates broker-config/reference/ from broker-config/topology.toml, with throwaway user
# identities. Only the nats-server configs, node list and public certificates are committed;
# private keys and credentials are ignored by git (see .gitignore there).
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
rm -rf broker-config/reference/secrets broker-config/reference/creds
echo "regenerated broker-config/reference"
