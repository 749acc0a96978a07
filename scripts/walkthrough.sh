#!/usr/bin/env bash
# Runs README.md's walkthrough block, command by command as written, against
# a local cluster started by scripts/local-cluster.sh, and fails on the first
# command that fails. Stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

block="$(awk '/^## Walkthrough/ { on = 1 } on && /^```sh/ { grab = 1; next } grab && /^```/ { exit } grab { print }' README.md)"
if [ -z "$block" ]; then
  echo "walkthrough: no sh block under '## Walkthrough' in README.md" >&2
  exit 1
fi

# A fresh cluster, as a reader's first run is: state left by an earlier run
# (site-b last chosen, say) would make site-a's start a failover with a
# cooldown, and the block's kill would then wait for approval.
rm -rf .local-cluster/site-a .local-cluster/site-b .local-cluster/witness
mkdir -p .local-cluster
bash scripts/local-cluster.sh > .local-cluster/walkthrough.log 2>&1 &
cluster=$!
cleanup() {
  kill "$cluster" 2>/dev/null || true
  pkill -f 'deploy/local/(site-a|site-b|witness).toml' 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Up to two minutes for the build and the first election.
for _ in $(seq 1 600); do
  if curl -sf 127.0.0.1:8401/active >/dev/null 2>&1; then break; fi
  sleep 0.2
done
curl -sf 127.0.0.1:8401/active >/dev/null || { echo "walkthrough: site-a never became active" >&2; exit 1; }

# The block's lines run in one shell, with its alias, exactly as written,
# read from stdin (so `pkill -f` in the block cannot match this shell's own
# arguments). `curl -i` on the standby prints its 503 and exits 0, as for a
# reader.
bash -euo pipefail -O expand_aliases -s <<< "$block"
echo "walkthrough: every command of README.md's walkthrough succeeded"
