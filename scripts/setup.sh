#!/usr/bin/env bash
# Installs what the test command needs and is not there yet; scripts/test.sh
# runs it first, so `bash scripts/test.sh` works on a fresh machine.
#
# As root it installs with apt-get (BIND9, HAProxy, Chromium...), pip into
# virtualenvs under the cargo target directory (SecantusDB, moto: never into
# the system Python) and cargo install (cargo-mutants). Not as root, it
# installs nothing system-wide: it lists exactly what is missing and stops,
# since the end-to-end and benchmark tests need root anyway (network
# namespaces, iptables, the runbook's hosts).
#
# scripts/test.sh sources it, to get SECANTUS_VENV and MOTO_VENV for the
# tests; `bash scripts/setup.sh` on its own only installs.

# Real targets for the actuator tests: BIND9 (named, plus dig and nsupdate
# to check it independently) and HAProxy. None is used as a service: the
# tests start their own instances on loopback ports. Chromium and
# chromedriver load the status page; promtool checks the alert rules;
# systemd-analyze verifies the units; keepalived, etcd (with protoc and
# protobuf's .proto files, to build the etcd elector), stress-ng, iptables
# and iproute2 serve the benchmark's short run on network namespaces; the real
# systemd-sysusers creates the daemons' user on each of the runbook's hosts.
failover_setup() {
    local need=() tool_package tool package
    for tool_package in named:bind9 dig:bind9-dnsutils haproxy:haproxy chromium:chromium \
        chromedriver:chromium-driver promtool:prometheus systemd-analyze:systemd \
        systemd-sysusers:systemd keepalived:keepalived iptables:iptables ip:iproute2 \
        etcd:etcd-server stress-ng:stress-ng protoc:protobuf-compiler curl:curl python3:python3; do
        tool="${tool_package%%:*}" package="${tool_package#*:}"
        command -v "$tool" >/dev/null || need+=("$package")
    done
    # etcd-client's build compiles etcd's .proto files, which import
    # protobuf's well-known types.
    [ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
    if command -v python3 >/dev/null && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        need+=(python3-venv)
    fi
    mapfile -t need < <(printf '%s\n' "${need[@]}" | awk 'NF && !seen[$0]++')
    if [ "$(id -u)" != 0 ]; then
        local missing=("${need[@]}")
        command -v cargo-mutants >/dev/null || missing+=("cargo-mutants (cargo install --locked cargo-mutants@27.1.0)")
        if [ ${#missing[@]} -gt 0 ]; then
            echo "scripts/test.sh needs root to install what is missing and to run the network tests." >&2
            echo "Missing: ${missing[*]}" >&2
            echo "Run it as root (it installs these with apt-get and cargo install), or install them and run it as root." >&2
            return 1
        fi
        echo "scripts/test.sh needs root: the end-to-end tests and the benchmark make network namespaces." >&2
        return 1
    fi
    if [ ${#need[@]} -gt 0 ]; then
        echo "== installing with apt-get: ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi

    local target_dir="${CARGO_TARGET_DIR:-target}"
    case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
    # SecantusDB, an independent MongoDB-wire-compatible server from PyPI (not
    # MongoDB), for tests/tests/secantus.rs. The tests read SECANTUS_VENV.
    export SECANTUS_VENV="${SECANTUS_VENV:-$target_dir/secantus-venv}"
    pip_venv "$SECANTUS_VENV" secantusdb 0.7.0b3 "secantusdb==0.7.0b3" || return 1
    "$SECANTUS_VENV/bin/secantusd-py" --help >/dev/null
    # moto, an AWS emulator from PyPI (not AWS), for tests/tests/route53.rs:
    # its server mode (moto_server) stands in for Route 53 on a loopback port.
    export MOTO_VENV="${MOTO_VENV:-$target_dir/moto-venv}"
    pip_venv "$MOTO_VENV" moto 5.2.5 "moto[server]==5.2.5" || return 1
    "$MOTO_VENV/bin/moto_server" --help >/dev/null
    # Mutation testing of the core (scripts/mutants.sh), from crates.io.
    command -v cargo-mutants >/dev/null || cargo install --locked --quiet cargo-mutants@27.1.0
    # Installing the packages may start their services; the tests use their own.
    systemctl stop named haproxy prometheus keepalived etcd >/dev/null 2>&1 || true
}

# pip_venv DIR PACKAGE VERSION REQUIREMENT: a virtualenv at DIR holding
# PACKAGE at VERSION, made or brought to that version with pip.
pip_venv() {
    if ! "$1/bin/pip" show "$2" 2>/dev/null | grep -x "Version: $3" >/dev/null; then
        echo "== installing $4 into $1"
        python3 -m venv "$1" && "$1/bin/pip" install --quiet --disable-pip-version-check "$4"
    fi
}

failover_setup
