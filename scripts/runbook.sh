#!/usr/bin/env bash
# Runs every ```sh block of docs/operations.md as written, in order, against
# a fresh three-node cluster with mutual TLS, and fails on the first command
# that fails or that does not print a line the document shows for it.
#
# Each host of the document (site-a, site-b, the witness, and "ops": the
# trusted machine that makes the secrets) is a mount namespace in which
# /etc, /usr, /var and this checkout are overlays of the real ones, so
# `sudo install ... /usr/local/bin/`, `systemd-sysusers`, /etc/failover and
# /etc/hosts (the members' names) are the host's own and vanish afterwards. The document's addresses
# 10.N.0.M become 127.0.N.M (everything stays on loopback). `sudo` runs the
# command as root (the script is root), or with -u as that user, and
# `systemctl` is a stand-in that starts a unit the way systemd would from its
# installed unit file: ExecStartPre, then ExecStart, as its User and Group,
# with its StateDirectory, Environment, UMask and LimitNOFILE (see
# write_systemctl below). So the daemons run as the `failover` user and
# must be able to read what the document installs for them.
#
# Every block is preceded by an annotation the reader does not see:
#   <!-- runbook: on=HOSTS [as=NAME] [stdin=TEXT] [before=ACTIONS] [after=ACTIONS] -->
#   <!-- runbook: env -->   (the block sets the environment of every later block)
# on: the hosts the block runs on, in order (comma-separated); as: a name in
# the block replaced by each host's own (a command written for site-a and
# run on each host); stdin: what the operator types; ACTIONS, separated by
# ';', are what the prose around the block says happens:
#   configure:HOSTS          write each host's config from deploy/examples/three-sites
#                            (addresses mapped as above, actuators left out) and its hooks
#   copy:FROM:PATHS:HOSTS    copy files of the checkout from one host to others
#   new-build:HOSTS          put this build's daemons in the host's checkout (an upgrade)
#   power-off:HOSTS          the host goes down: its daemon is killed with SIGKILL
#   power-on:HOSTS           the host comes back: its unit is started
#   lease-lapsed:SITE        time passes until the site's lease has run out
# A line `#> TEXT` after a command is output the document promises: some line
# the command prints (stdout or stderr) must equal TEXT, where `…` stands for
# any text. A block without an annotation fails the run.
#
# Needs root (mount namespaces and overlays). Stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
doc=docs/operations.md

if [ "$(id -u)" != 0 ]; then
  echo "runbook: needs root (each host is a mount namespace with overlays)" >&2
  exit 1
fi

work="$(mktemp -d /tmp/runbook.XXXXXX)"
hosts=(ops site-a site-b witness)
declare -A keeper
helper_pid=""

cleanup() {
  local pidfile
  for pidfile in "$work"/hosts/*/*.pid; do
    [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
  done
  for h in "${!keeper[@]}"; do kill -9 "${keeper[$h]}" 2>/dev/null || true; done
  [ -n "$helper_pid" ] && kill "$helper_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
fail() {
  echo "runbook: FAILED: $*" >&2
  local log
  for log in "$work"/hosts/*/*.log; do
    [ -f "$log" ] || continue
    echo "---- last lines of $log" >&2
    tail -n 15 "$log" >&2
  done
  exit 1
}
trap cleanup EXIT

# The document's addresses, moved onto loopback.
to_loopback() { perl -pe 's/(?<![0-9.])10\.(\d{1,3})\.0\.(\d{1,3})(?![0-9])/127.0.$1.$2/g'; }

# ---- the sh blocks and their annotations -----------------------------------
mkdir -p "$work/blocks"
awk -v dir="$work/blocks" '
  /^[ \t]*```sh[ \t]*$/ {
    n++; indent = match($0, /[^ \t]/) - 1
    printf "%s\n", ann > (dir "/" sprintf("%02d", n) ".ann")
    close(dir "/" sprintf("%02d", n) ".ann")
    out = dir "/" sprintf("%02d", n) ".sh"; printf "" > out; grab = 1; next
  }
  grab && /^[ \t]*```[ \t]*$/ { grab = 0; close(out); ann = ""; next }
  grab { print substr($0, indent + 1) > out; next }
  /^[ \t]*$/ { next }
  /^[ \t]*<!-- runbook:.*-->[ \t]*$/ { ann = $0; sub(/^[ \t]*<!-- runbook:[ \t]*/, "", ann); sub(/[ \t]*-->[ \t]*$/, "", ann); next }
  { ann = "" }
' "$doc"
blocks=("$work"/blocks/*.sh)
[ -e "${blocks[0]}" ] || fail "no sh blocks in $doc"
for b in "${blocks[@]}"; do
  if [ ! -s "${b%.sh}.ann" ] || [ "$(cat "${b%.sh}.ann")" = "" ]; then
    fail "$doc: the sh block starting \"$(head -n 1 "$b")\" has no <!-- runbook: ... --> line before it"
  fi
done

# ---- stand-ins for sudo and systemd ----------------------------------------
shims="$work/shims"
mkdir -p "$shims"
cat > "$shims/sudo" <<'EOF'
#!/bin/sh
# The runbook runs as root: sudo runs the command, as root or, with -u, as
# that user (its own group and supplementary groups).
if [ "$1" = -u ]; then
  user="$2"; shift 2
  exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups "$@"
fi
exec "$@"
EOF
write_systemctl() {
  cat > "$shims/systemctl" <<'EOF'
#!/usr/bin/env bash
# A stand-in for systemctl: starts and stops a unit from its installed unit
# file as systemd would (ExecStartPre, ExecStart, User, Group, Environment,
# StateDirectory, StateDirectoryMode, UMask, LimitNOFILE, TimeoutStopSec),
# and reloads it with its ExecReload.
set -euo pipefail
state="${RUNBOOK_STATE:?}"
unit_file() { echo "/etc/systemd/system/${1%.service}.service"; }
key() { sed -n "s/^$2=//p" "$(unit_file "$1")" | tail -n 1; }
running() {
  local pid
  pid="$(cat "$state/$1.pid" 2>/dev/null)" || return 1
  [ -n "$pid" ] && [ -e "/proc/$pid" ] && [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
start() {
  local u="${1%.service}"
  [ -f "$(unit_file "$u")" ] || { echo "Unit $u.service not found." >&2; exit 5; }
  if running "$u"; then return 0; fi
  local user group dir mode nofile umask_
  user="$(key "$u" User)"; group="$(key "$u" Group)"
  dir="$(key "$u" StateDirectory)"; mode="$(key "$u" StateDirectoryMode)"
  nofile="$(key "$u" LimitNOFILE)"; umask_="$(key "$u" UMask)"
  # No higher than this machine lets even root go (containers cap it).
  nofile="${nofile:-1024}"; [ "$nofile" -gt "$(ulimit -Hn)" ] && nofile="$(ulimit -Hn)"
  [ -n "$dir" ] && install -d -m "${mode:-0755}" -o "$user" -g "$group" "/var/lib/$dir"
  local -a run=(prlimit "--nofile=$nofile:$nofile"
    setpriv "--reuid=$user" "--regid=$group" --init-groups
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  local e
  while read -r e; do [ -n "$e" ] && run+=("$e"); done < <(sed -n 's/^Environment=//p' "$(unit_file "$u")")
  local -a pre start_
  read -r -a pre <<< "$(key "$u" ExecStartPre)"
  read -r -a start_ <<< "$(key "$u" ExecStart)"
  if [ "${#pre[@]}" -gt 0 ] && ! (umask "${umask_:-0022}"; "${run[@]}" "${pre[@]}") >> "$state/$u.log" 2>&1; then
    echo "Job for $u.service failed because the control process exited with error code (ExecStartPre)." >&2
    tail -n 5 "$state/$u.log" >&2
    exit 1
  fi
  (umask "${umask_:-0022}"; exec setsid "${run[@]}" "${start_[@]}" >> "$state/$u.log" 2>&1 < /dev/null) &
  echo $! > "$state/$u.pid"
}
stop() {
  local u="${1%.service}" pid limit
  running "$u" || return 0
  pid="$(cat "$state/$u.pid")"
  limit="$(key "$u" TimeoutStopSec)"; limit="${limit%s}"
  kill -TERM "$pid"
  for _ in $(seq 1 $(( ${limit:-90} * 10 ))); do running "$u" || return 0; sleep 0.1; done
  kill -KILL "$pid"
}
case "${1:-}" in
  enable) [ "${2:-}" = --now ] && start "$3" ;;
  start) start "$2" ;;
  stop) stop "$2" ;;
  restart) stop "$2"; start "$2" ;;
  # ExecReload with $MAINPID, as systemd runs it.
  reload)
    u="${2%.service}"
    running "$u" || { echo "$u.service is not active, cannot reload." >&2; exit 1; }
    read -r -a reload_ <<< "$(key "$u" ExecReload | sed "s/\$MAINPID/$(cat "$state/$u.pid")/")"
    "${reload_[@]}" ;;
  *) echo "systemctl (runbook stand-in): $* is not supported" >&2; exit 1 ;;
esac
EOF
}
write_systemctl
chmod 0755 "$shims"/*

# ---- hosts -----------------------------------------------------------------
start_host() {
  local h="$1" dir="$work/hosts/$1" d
  mkdir -p "$dir"
  for d in etc usr var repo; do mkdir -p "$dir/$d.up" "$dir/$d.work"; done
  unshare --mount --propagation private -- bash -c '
    set -e
    for d in etc usr var; do
      mount -t overlay overlay -o "lowerdir=/$d,upperdir=$1/$d.up,workdir=$1/$d.work" "/$d"
    done
    mount -t overlay overlay -o "lowerdir=$2,upperdir=$1/repo.up,workdir=$1/repo.work" "$2"
    touch "$1/ready"
    exec sleep 1800' runbook-host "$dir" "$repo" &
  keeper[$h]=$!
  for _ in $(seq 1 100); do [ -e "$dir/ready" ] && return 0; sleep 0.1; done
  fail "host $h: could not mount its overlays"
}
# Runs a command inside a host, as root, in its checkout.
in_host() {
  local h="$1"; shift
  nsenter -t "${keeper[$h]}" -m -- env RUNBOOK_STATE="$work/hosts/$h" \
    PATH="$shims:/usr/local/sbin:/usr/local/bin:$PATH" bash -c 'cd "$0" && "$@"' "$repo" "$@"
}
address_of() { case "$1" in site-a) echo 127.0.1.10 ;; site-b) echo 127.0.2.10 ;; *) echo 127.0.3.10 ;; esac; }
unit_of() { if [ "$1" = witness ]; then echo failover-witness; else echo failover-controller; fi; }

# The applications whose health the example configs check: GET
# /healthz on 127.0.N.20:8080 and a TCP port on 127.0.N.30:27017 per site.
start_checked_services() {
  python3 - "$work" <<'EOF' > "$work/checked-services.log" 2>&1 &
import http.server, socketserver, sys, threading, time

class Healthz(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

class Accept(socketserver.BaseRequestHandler):
    def handle(self):
        pass

class TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

servers = [Server((f"127.0.{n}.20", 8080), Healthz) for n in (1, 2)]
servers += [TcpServer((f"127.0.{n}.30", 27017), Accept) for n in (1, 2)]
for s in servers:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
time.sleep(1800)
EOF
  helper_pid=$!
  for _ in $(seq 1 100); do grep -q ready "$work/checked-services.log" && return 0; sleep 0.1; done
  fail "the checked services did not start: $(cat "$work/checked-services.log")"
}

# ---- the actions the prose describes ---------------------------------------
configure() {
  local h="$1" name file
  if [ "$h" = witness ]; then name=witness.toml; else name=controller.toml; fi
  file="$work/hosts/$h/$name"
  to_loopback < "deploy/examples/three-sites/$h.toml" | sed '/^\[actuators\]/,$d' > "$file"
  in_host "$h" install -m 0640 -o root -g failover "$file" "/etc/failover/$name"
  if [ "$h" != witness ]; then
    in_host "$h" install -d -m 0750 -o root -g failover /etc/failover/hooks
    local hook
    for hook in pre-promote post-promote on-demote; do
      printf '#!/bin/sh\nexit 0\n' > "$work/hosts/$h/$hook"
      in_host "$h" install -m 0750 -o root -g failover "$work/hosts/$h/$hook" "/etc/failover/hooks/$hook"
    done
  fi
}
copy_between() {
  local from="$1" paths="$2" to="$3" p h
  rm -rf "$work/transfer"; mkdir -p "$work/transfer"
  for p in ${paths//,/ }; do in_host "$from" cp -a "$p" "$work/transfer/"; done
  for h in ${to//,/ }; do in_host "$h" cp -a "$work/transfer/." .; done
}
act() {
  local action="$1" verb args h
  verb="${action%%:*}"; args="${action#*:}"
  case "$verb" in
    configure) for h in ${args//,/ }; do configure "$h"; done ;;
    copy) IFS=: read -r from paths to <<< "$args"; copy_between "$from" "$paths" "$to" ;;
    new-build)
      for h in ${args//,/ }; do
        in_host "$h" cp target/dist/failover-controller target/dist/failover-witness .
      done ;;
    power-off)
      for h in ${args//,/ }; do
        kill -9 "$(cat "$work/hosts/$h/$(unit_of "$h").pid")" 2>/dev/null || true
      done ;;
    power-on) for h in ${args//,/ }; do in_host "$h" systemctl start "$(unit_of "$h")"; done ;;
    lease-lapsed)
      # Until the site's lease has run out: /active on it answers 503.
      local code
      for _ in $(seq 1 300); do
        code="$(curl -s -o /dev/null -w '%{http_code}' "http://$(address_of "$args"):8400/active" || true)"
        [ "$code" = 503 ] && break
        sleep 0.2
      done
      [ "$code" = 503 ] || fail "$args still answers $code on /active after 60 s" ;;
    *) fail "unknown runbook action '$action'" ;;
  esac
  echo "runbook: ($action)"
}

# ---- one block on one host -------------------------------------------------
# Writes a script that runs the block's commands one by one in one shell
# (so exports carry), prints each with its output, and stops at the first
# that fails or lacks a promised line.
compile_block() {
  local block="$1" host="$2" stdin_file="$3" out="$4"
  {
    echo 'set -uo pipefail'
    echo "export RUNBOOK_STATE='$work/hosts/$host'"
    echo "[ -f '$work/env.sh' ] && source '$work/env.sh'"
    cat <<'EOF'
promised() {
  local output="$1" want="$2" line glob
  glob="$(printf '%s' "$want" | sed 's/[][\\*?]/\\&/g; s/…/*/g')"
  while IFS= read -r line; do
    # shellcheck disable=SC2053
    [[ "$line" == $glob ]] && return 0
  done < "$output"
  echo "runbook: FAILED: the document promises the line: $want" >&2
  exit 1
}
EOF
    local cmd="" n=0 line
    flush() {
      [ -z "$cmd" ] && return 0
      n=$((n + 1))
      printf 'printf "%%s\\n" %q\n' "[$host]\$ $cmd"
      printf 'started=$(date +%%s%%N)\n'
      printf '{ %s\n} > "%s/out.%s" 2>&1 < "%s"\n' "$cmd" "$work" "$n" "$stdin_file"
      printf 'rc=$?; cat "%s/out.%s"; echo "  ($(( ($(date +%%s%%N) - started) / 1000000 )) ms)"\n' "$work" "$n"
      printf '[ $rc = 0 ] || { echo "runbook: FAILED: exit status $rc on %s" >&2; exit 1; }\n' "$host"
      cmd=""
    }
    while IFS= read -r line || [ -n "$line" ]; do
      if [[ "$line" =~ ^[[:space:]]*\#\>\ ?(.*)$ ]]; then
        flush
        printf 'promised "%s/out.%s" %q\n' "$work" "$n" "${BASH_REMATCH[1]}"
      elif [ -n "$cmd" ] && [[ "$cmd" == *\\ ]]; then
        cmd="$cmd"$'\n'"$line"
      elif [[ "$line" =~ ^[[:space:]]*(\#.*)?$ ]]; then
        flush
      else
        flush
        cmd="$line"
      fi
    done < "$block"
    flush
  } > "$out"
}

run_block() {
  local block="$1" ann on="" as="" stdin="" before="" after="" word h
  ann="$(cat "${block%.sh}.ann")"
  if [ "$ann" = env ]; then
    to_loopback < "$block" > "$work/env.sh"
    echo "runbook: environment of every later block:"; cat "$work/env.sh"
    return 0
  fi
  for word in $ann; do
    case "$word" in
      on=*) on="${word#on=}" ;;
      as=*) as="${word#as=}" ;;
      stdin=*) stdin="${word#stdin=}" ;;
      before=*) before="${word#before=}" ;;
      after=*) after="${word#after=}" ;;
      *) fail "$(basename "$block"): unknown annotation '$word'" ;;
    esac
  done
  [ -n "$on" ] || fail "block $(basename "$block"): its annotation names no host (on=)"
  local a
  for a in ${before//;/ }; do act "$a"; done
  printf '%s\n' "$stdin" > "$work/stdin"
  for h in ${on//,/ }; do
    local text="$work/block.txt"
    if [ -n "$as" ]; then sed "s/$as/$h/g" "$block" | to_loopback > "$text"; else to_loopback < "$block" > "$text"; fi
    compile_block "$text" "$h" "$work/stdin" "$work/block-run.sh"
    in_host "$h" bash "$work/block-run.sh" || fail "block $(basename "$block") on $h"
  done
  for a in ${after//;/ }; do act "$a"; done
}

# ---- the run ---------------------------------------------------------------
# The install block builds the daemons from this checkout; building them
# here first keeps the three hosts from each building them in their overlay.
cargo build --profile dist --locked -p failover-controller -p failover-witness --bins
for h in "${hosts[@]}"; do start_host "$h"; done
in_host ops install -m 0755 target/dist/failoverctl /usr/local/bin/
start_checked_services
for b in "${blocks[@]}"; do run_block "$b"; done
echo "runbook: every command of $doc ran as written and printed what it promises (${#blocks[@]} blocks)"
trap - EXIT
cleanup
rm -rf "$work"
