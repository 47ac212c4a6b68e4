#!/usr/bin/env bash
# Install and start the services the test suite needs: the Docker engine and the sandbox image.
#
# Run as root on a fresh Debian/Ubuntu machine (CI does this from .ci/run). Safe to run again: a running
# engine and an existing image are reused. Ray needs no service: its tests start a local cluster inside
# the test session (ray.init), so only a check is done here.
#
# A service that cannot be started is reported here (and in $STATUS_FILE) but does not abort: the Docker
# tests then skip with the reason from codegym.execution.docker_backend.docker_available(), except on CI
# (CI=true), where tests/test_docker_backend.py::test_docker_is_available_on_ci fails with that reason so
# that a broken set-up cannot pass as "all skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

LOG_DIR="${CODEGYM_SERVICES_LOG_DIR:-/tmp/codegym-services}"
STATUS_FILE="$LOG_DIR/status.txt"
mkdir -p "$LOG_DIR"
: >"$STATUS_FILE"

note() { echo "ci_services: $*" | tee -a "$STATUS_FILE"; }

as_root() {
    if [[ "$(id -u)" == "0" ]]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else return 1; fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    if [[ -z "${_APT_UPDATED:-}" ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$LOG_DIR/apt-update.log" 2>&1 || true
        _APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$LOG_DIR/apt-install.log" 2>&1
}

wait_for_docker() {
    local seconds="$1"
    for _ in $(seq 1 "$seconds"); do
        timeout 10 docker info >/dev/null 2>&1 && return 0
        sleep 1
    done
    return 1
}

start_dockerd() {
    # No bridge, no iptables: the sandbox containers run with network_mode="none", and many CI machines
    # (containers themselves) allow neither. Extra flags (e.g. a storage driver) come as arguments.
    local log="$LOG_DIR/dockerd.log"
    note "starting dockerd $* (log: $log)"
    as_root setsid nohup dockerd --bridge=none --iptables=false --ip-masq=false "$@" >>"$log" 2>&1 </dev/null &
    echo $! >"$LOG_DIR/dockerd.pid"
    wait_for_docker 60
}

docker_ok=0
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    note "installing docker.io"
    apt_install docker.io || note "could not install docker.io (see $LOG_DIR/apt-install.log)"
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    apt_install debootstrap || note "could not install debootstrap (see $LOG_DIR/apt-install.log)"
fi

if timeout 10 docker info >/dev/null 2>&1; then
    note "the Docker engine is already running"
    docker_ok=1
elif command -v dockerd >/dev/null 2>&1; then
    if start_dockerd; then
        docker_ok=1
    else
        # overlay2 is unavailable on some nested set-ups; vfs is slow to build but always works.
        note "dockerd did not answer within 60 s; retrying with --storage-driver=vfs"
        if [[ -f "$LOG_DIR/dockerd.pid" ]]; then as_root kill "$(cat "$LOG_DIR/dockerd.pid")" 2>/dev/null; fi
        sleep 2
        as_root rm -f /var/run/docker.pid
        if start_dockerd --storage-driver=vfs; then
            docker_ok=1
        else
            note "dockerd failed to start; last lines of its log:"
            tail -n 20 "$LOG_DIR/dockerd.log" | tee -a "$STATUS_FILE"
        fi
    fi
else
    note "dockerd is not installed and could not be installed"
fi

if [[ "$docker_ok" == "1" ]]; then
    note "Docker engine: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
    if bash scripts/build_sandbox_image.sh >"$LOG_DIR/build_image.log" 2>&1; then
        note "sandbox image: $(tail -n 1 "$LOG_DIR/build_image.log")"
    else
        note "building the sandbox image failed; last lines of $LOG_DIR/build_image.log:"
        tail -n 20 "$LOG_DIR/build_image.log" | tee -a "$STATUS_FILE"
    fi
fi

# Ray: nothing to start. /dev/shm below ~1 GB makes Ray fall back to /tmp for its object store (slower,
# still correct), which is worth a note when reading CI logs.
shm_kb="$(df -k /dev/shm 2>/dev/null | awk 'NR==2 {print $2}')"
if [[ -n "$shm_kb" ]]; then note "/dev/shm: $((shm_kb / 1024)) MB (Ray uses it for its object store)"; fi

exit 0
