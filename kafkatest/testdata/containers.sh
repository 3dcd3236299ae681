#!/usr/bin/env bash
# Sets up what kafkatest's container backend needs on a machine with no
# container engine and no image registry (CI and the developers' machines):
#
#   containers.sh engine                  install docker.io if dockerd is missing,
#                                         start a private dockerd (or reuse it);
#                                         prints DOCKER_HOST=unix://… on stdout
#   containers.sh image RELEASE LIBS      build the stand-in image
#                                         kupgrade-kafkatest/kafka:RELEASE from the
#                                         Kafka jars in LIBS (Maven-resolved) and a
#                                         debootstrapped JRE; prints its name
#   containers.sh stop                    stop the private dockerd
#
# The daemon: `dockerd --bridge=none --iptables=false`, overlay2 storage
# where the kernel allows (vfs otherwise), its own data root and socket
# under the cache directory, so it touches no
# system engine and no network but loopback (containers run with host
# networking). Images keep the layout of the official apache/kafka images:
# /opt/kafka/libs, /var/lib/kafka/data owned by appuser (uid 1000), user
# appuser. Everything is cached: the JRE root filesystem as a tarball (so a
# new data root needs no debootstrap), the images in the data root; a second
# run builds nothing. The Debian mirror is read from this machine's apt
# sources. Every step reports its duration on stderr.
set -euo pipefail

CACHE="${KUPGRADE_CONTAINERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kupgrade/containers}"
SOCK="$CACHE/docker.sock"
EXEC_ROOT="/run/kupgrade-dockerd" # short: containerd's socket paths are length-limited
BASE_IMAGE="kupgrade-kafkatest/jre:bookworm-17"
export DOCKER_HOST="unix://$SOCK"
export DOCKER_BUILDKIT=0 # no buildx here; the classic builder runs no container for COPY

mkdir -p "$CACHE"
say() { echo "containers.sh: $*" >&2; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# One setup at a time on the machine (two test binaries may call it at once).
exec 9>"$CACHE/setup.lock"
flock 9

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

install_engine() {
  if command -v dockerd >/dev/null 2>&1; then
    return
  fi
  [ "$(id -u)" = 0 ] || { say "dockerd is missing and installing docker.io needs root"; exit 1; }
  local t0 added=""
  t0=$(now)
  say "installing docker.io (apt-get)…"
  # Keep the package from starting the system's own daemon (bridge, iptables).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    added=1
  fi
  apt-get update -qq >>"$CACHE/apt.log" 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >>"$CACHE/apt.log" 2>&1
  [ -n "$added" ] && rm -f /usr/sbin/policy-rc.d
  say "docker.io installed in $(took "$t0")"
}

# storage_driver prints overlay2 where this kernel mounts overlayfs on the
# cache's file system (a container then starts without copying its image),
# vfs otherwise; KUPGRADE_CONTAINERS_STORAGE chooses.
storage_driver() {
  if [ -n "${KUPGRADE_CONTAINERS_STORAGE:-}" ]; then
    echo "$KUPGRADE_CONTAINERS_STORAGE"
    return
  fi
  local t ok=""
  t=$(mktemp -d "$CACHE/ovl.XXXXXX")
  mkdir -p "$t/l" "$t/u" "$t/w" "$t/m"
  if mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
    umount "$t/m"
    ok=1
  fi
  rm -rf "$t"
  if [ -n "$ok" ]; then echo overlay2; else echo vfs; fi
}

start_engine() {
  if engine_up; then
    return
  fi
  [ "$(id -u)" = 0 ] || { say "starting a private dockerd needs root"; exit 1; }
  local t0 pid
  t0=$(now)
  mkdir -p "$CACHE/root" "$EXEC_ROOT"
  rm -f "$SOCK"
  local driver
  driver=$(storage_driver)
  say "starting a private dockerd on $SOCK (storage driver $driver; log: $CACHE/dockerd.log)"
  setsid dockerd --host="unix://$SOCK" --data-root="$CACHE/root" --exec-root="$EXEC_ROOT" \
    --pidfile="$CACHE/dockerd.pid" --bridge=none --iptables=false --ip-masq=false \
    --storage-driver="$driver" </dev/null >>"$CACHE/dockerd.log" 2>&1 9>&- &
  pid=$!
  for _ in $(seq 1 120); do
    if engine_up; then
      say "dockerd $(docker version --format '{{.Server.Version}}') up in $(took "$t0")"
      return
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      say "dockerd exited during start; last lines of $CACHE/dockerd.log:"
      tail -n 15 "$CACHE/dockerd.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  say "dockerd not answering on $SOCK within 60s; last lines of $CACHE/dockerd.log:"
  tail -n 15 "$CACHE/dockerd.log" >&2
  exit 1
}

# mirror prints the Debian archive this machine's apt uses for bookworm.
mirror() {
  local m
  m=$(awk '
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") { print uri; exit } }
  ' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
  fi
  [ -n "$m" ] || { say "no bookworm mirror in the apt sources"; exit 1; }
  echo "$m"
}

base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    return
  fi
  local tar="$CACHE/jre-bookworm-17.tar" t0 dir
  if [ ! -s "$tar" ]; then
    command -v debootstrap >/dev/null 2>&1 || {
      local t1
      t1=$(now)
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >>"$CACHE/apt.log" 2>&1 || {
        apt-get update -qq >>"$CACHE/apt.log" 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >>"$CACHE/apt.log" 2>&1
      }
      say "debootstrap installed in $(took "$t1")"
    }
    t0=$(now)
    dir=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    chmod 755 "$dir" # the image's /: mktemp makes it 0700
    say "debootstrapping a bookworm JRE 17 root filesystem…"
    debootstrap --variant=minbase --include=openjdk-17-jre-headless bookworm "$dir" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 || {
      say "debootstrap failed; last lines of $CACHE/debootstrap.log:"
      tail -n 15 "$CACHE/debootstrap.log" >&2
      rm -rf "$dir"
      exit 1
    }
    chroot "$dir" groupadd -g 1000 appuser
    chroot "$dir" useradd -u 1000 -g 1000 -M -d /opt/kafka -s /usr/sbin/nologin appuser
    mkdir -p "$dir/opt/kafka/libs" "$dir/var/lib/kafka/data"
    chown -R 1000:1000 "$dir/opt/kafka" "$dir/var/lib/kafka"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc "$dir"/usr/share/man "$dir"/usr/share/locale
    tar -C "$dir" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$dir"
    say "JRE root filesystem made in $(took "$t0") ($(du -h "$tar" | cut -f1))"
  fi
  t0=$(now)
  docker import --change 'USER appuser' --change 'WORKDIR /opt/kafka' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL org.kupgrade.kafkatest.image=jre' "$tar" "$BASE_IMAGE" >/dev/null
  say "$BASE_IMAGE imported in $(took "$t0")"
}

kafka_image() {
  local release="$1" libs="$2" image="kupgrade-kafkatest/kafka:$1" t0 ctx
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image"
    return
  fi
  [ -d "$libs" ] || { say "no Kafka jars at $libs"; exit 1; }
  base_image
  t0=$(now)
  ctx=$(mktemp -d "$CACHE/ctx.XXXXXX")
  cp -rL "$libs" "$ctx/libs"
  cat >"$ctx/Dockerfile" <<EOF
FROM $BASE_IMAGE
COPY --chown=1000:1000 libs /opt/kafka/libs
LABEL org.kupgrade.kafkatest.image=kafka org.kupgrade.kafkatest.release=$release
USER appuser
WORKDIR /opt/kafka
EOF
  docker build -q -t "$image" "$ctx" >/dev/null 2>"$CACHE/build.log" || {
    say "docker build of $image failed:"
    tail -n 15 "$CACHE/build.log" >&2
    rm -rf "$ctx"
    exit 1
  }
  rm -rf "$ctx"
  say "$image built in $(took "$t0")"
  echo "$image"
}

case "${1:-}" in
engine)
  install_engine
  start_engine
  echo "DOCKER_HOST=unix://$SOCK"
  ;;
image)
  [ $# -eq 3 ] || { say "usage: containers.sh image RELEASE LIBS"; exit 2; }
  start_engine
  kafka_image "$2" "$3"
  ;;
stop)
  if [ -f "$CACHE/dockerd.pid" ] && kill -0 "$(cat "$CACHE/dockerd.pid")" 2>/dev/null; then
    kill "$(cat "$CACHE/dockerd.pid")"
    say "stopped dockerd $(cat "$CACHE/dockerd.pid")"
  fi
  ;;
*)
  say "usage: containers.sh engine | image RELEASE LIBS | stop"
  exit 2
  ;;
esac
