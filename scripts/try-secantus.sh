#!/usr/bin/env bash
# Runs the block under "## Try it with SecantusDB" in docs/mongodb.md, as
# written, from the repository's root, and fails on the first command that
# fails. Needs the release binaries and SecantusDB (scripts/setup.sh).
# Stops everything the block started, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

block="$(awk '/^## Try it with SecantusDB/ { on = 1 } on && /^```sh/ { grab = 1; next } grab && /^```/ { exit } grab { print }' docs/mongodb.md)"
if [ -z "$block" ]; then
  echo "try-secantus: no sh block under '## Try it with SecantusDB' in docs/mongodb.md" >&2
  exit 1
fi
cleanup() {
  pkill -9 -f '\.try-secantus/' 2>/dev/null || true
  rm -rf .try-secantus
}
trap cleanup EXIT
# Read from stdin, so `pkill -f` in the block cannot match this shell.
if ! timeout 300 bash -euo pipefail -s <<< "$block"; then
  for log in .try-secantus/*.log; do echo "== $log"; tail -n 20 "$log"; done >&2
  echo "try-secantus: the block of docs/mongodb.md failed" >&2
  exit 1
fi
echo "try-secantus: docs/mongodb.md's SecantusDB block ran as written"
