#!/usr/bin/env bash
# Starts the local three-node cluster (site-a, site-b, witness on 127.0.0.1)
# from deploy/local/, building as needed, and shows its live status until
# Ctrl-C, which stops all three. Logs: .local-cluster/<node>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p failover-controller -p failover-witness
bin=target/release
mkdir -p .local-cluster
if [ ! -s .local-cluster/admin.token ]; then
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > .local-cluster/admin.token
fi
export FAILOVER_ADMIN__TOKEN="$(cat .local-cluster/admin.token)"

# A new local cluster (no node has a state file yet): its explicit first
# start. A node whose file alone is missing later counts as one that lost
# it, and catches up from the other two before it votes.
if [ ! -e .local-cluster/site-a/state.json ] && [ ! -e .local-cluster/site-b/state.json ] \
  && [ ! -e .local-cluster/witness/state.json ]; then
  "$bin/failover-witness" init --config deploy/local/witness.toml
  "$bin/failover-controller" init --config deploy/local/site-a.toml
  "$bin/failover-controller" init --config deploy/local/site-b.toml
fi

pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 0' INT TERM

"$bin/failover-witness" run --config deploy/local/witness.toml > .local-cluster/witness.log 2>&1 & pids+=($!)
"$bin/failover-controller" run --config deploy/local/site-a.toml > .local-cluster/site-a.log 2>&1 & pids+=($!)
"$bin/failover-controller" run --config deploy/local/site-b.toml > .local-cluster/site-b.log 2>&1 & pids+=($!)

echo "started: site-a (pid ${pids[1]}), site-b (pid ${pids[2]}), witness (pid ${pids[0]})"
echo "admin token in .local-cluster/admin.token; logs in .local-cluster/*.log; Ctrl-C stops the cluster"
export FAILOVERCTL_ENDPOINTS=http://127.0.0.1:8401,http://127.0.0.1:8402,http://127.0.0.1:8403
while true; do
  sleep 1
  clear 2>/dev/null || true
  date
  "$bin/failoverctl" status || true
done
