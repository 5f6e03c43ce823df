#!/usr/bin/env bash
# ./deploy/test.sh [cargo test args...]
#
# Installs what the tests need (libpcap, nats-server 2.15 and DuckDB in a venv, Node with the
# console's npm packages, Debian's Chromium), then checks formatting and
# lints and runs the whole test suite: unit tests, test vectors, DNS tests against an in-process
# hickory server, and end-to-end tests against real federated nats-server clusters.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=deploy/common.sh
. deploy/common.sh

ensure_all
ensure_duckdb
ensure_console_tools
# systemd-analyze, for the unit files' test.
command -v systemd-analyze >/dev/null 2>&1 || ensure_apt systemd
# softflowd, a real NetFlow/IPFIX exporter, for the flow-import accuracy test.
ensure_apt softflowd
# A C++ compiler: libfuzzer-sys builds libFuzzer when the fuzz targets are checked (below).
command -v c++ >/dev/null 2>&1 || ensure_apt g++
log "nats-server: $("$NATS_SERVER" --version)  rust: $(rustc --version)"
if cargo fmt --version >/dev/null 2>&1; then
  log "cargo fmt --check"
  cargo fmt --all --check
fi
if cargo clippy --version >/dev/null 2>&1; then
  log "cargo clippy -D warnings"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  # The end-to-end bench needs the bench-only plaintext mode; it is linted with it.
  cargo clippy -p flowmesh --bench pipeline --features bench-plaintext --locked -- -D warnings
fi
# The fuzz targets are a workspace of their own that no test builds: type-check them, so a change
# of the types they fuzz cannot leave them broken (running them needs cargo-fuzz; README, Fuzzing).
log "cargo check (fuzz targets)"
cargo check --manifest-path fuzz/Cargo.toml --bins --locked \
  --target-dir "${CARGO_TARGET_DIR:-target}/fuzz-check"
log "cargo test"
out=$(mktemp); skips=$(mktemp); trap 'rm -f "$out" "$skips"' EXIT
# Tests that skip (no corpus, not root) write why here; a failed setup is a failure instead.
export FLOWMESH_SKIP_LOG="$skips"
set +e
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
if [ -s "$skips" ]; then
  log "skipped tests (they pass, but checked nothing):"
  sed 's/^/    /' "$skips" >&2
fi
# cargo prints one summary per test binary (the last is often doc-tests with 0): add them up.
# A skipped test is counted by cargo as passed; it is shown here as skipped instead.
nskip=$(wc -l <"$skips")
awk -v s="$nskip" '/^test result:/ {p += $4; f += $6} END {printf "total: %d passed, %d failed, %d skipped\n", p - s, f, s}' "$out"
exit "$rc"
