#!/usr/bin/env bash
# Build the CodeGym sandbox image (codegym-sandbox:latest) without pulling from a registry.
#
# It bootstraps a minimal Debian bookworm root file system with the full python3 package (the sandbox
# harness and candidate programs need the stdlib: json, ctypes, math, collections, ...) and imports it
# into the local Docker engine. Idempotent: if the image already exists it does nothing (FORCE=1 rebuilds).
#
# Users whose Docker can pull base images can instead run:  docker build -t codegym-sandbox:latest docker/
#
# Environment:
#   CODEGYM_SANDBOX_IMAGE  image tag to build (default codegym-sandbox:latest)
#   DEBIAN_MIRROR          Debian mirror (default: the first deb.debian.org-style URI in apt sources,
#                          else http://deb.debian.org/debian)
#   FORCE=1                rebuild even if the image exists
set -euo pipefail

IMAGE="${CODEGYM_SANDBOX_IMAGE:-codegym-sandbox:latest}"
SUITE="${DEBIAN_SUITE:-bookworm}"

if ! docker info >/dev/null 2>&1; then
    echo "build_sandbox_image: the Docker engine is not reachable (start dockerd, e.g. scripts/ci_services.sh)" >&2
    exit 1
fi

if [[ "${FORCE:-0}" != "1" ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "build_sandbox_image: $IMAGE already exists (FORCE=1 to rebuild)"
    exit 0
fi

if [[ -z "${DEBIAN_MIRROR:-}" ]]; then
    DEBIAN_MIRROR="$(grep -rhoE 'https?://[^ ]*/debian/?$' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | head -n1 || true)"
    DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == "0" ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
    else
        echo "build_sandbox_image: debootstrap is missing (apt-get install debootstrap), or use docker/Dockerfile" >&2
        exit 1
    fi
fi

ROOTFS="$(mktemp -d /tmp/codegym-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT

echo "build_sandbox_image: debootstrap $SUITE from $DEBIAN_MIRROR into $ROOTFS"
debootstrap --variant=minbase --include=python3 "$SUITE" "$ROOTFS" "$DEBIAN_MIRROR"

# Slim the image: package caches and docs are not needed to run programs.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*
# An unprivileged user for the programs (uid/gid 65534 "nobody" exists in the base system already).
mkdir -p "$ROOTFS/sandbox"

tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'WORKDIR /sandbox' \
    --change 'CMD ["python3"]' \
    - "$IMAGE"

docker run --rm --network none "$IMAGE" python3 -c "import json, ctypes, math, collections, resource; print('ok')"
echo "build_sandbox_image: built $IMAGE"
