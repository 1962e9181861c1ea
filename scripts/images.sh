#!/usr/bin/env bash
# Builds, without pulling anything, the images that vhostd's Dockerfile and docker-compose.yml need,
# into the private dockerd of a testenv STATE (scripts/testenv/up.sh must have run):
#
#   local/debian-base:bookworm-KEY  debootstrap minbase bookworm + ca-certificates, docs/man/locales/apt
#                                   lists left out: the stand-in for debian:bookworm-slim (the runtime
#                                   base, BASE_IMAGE) and the build stage (BUILD_IMAGE) of a prebuilt build.
#   nginx:stable (the name docker-compose.yml uses; also local/debian-nginx:bookworm-KEY)
#                                   the same base + Debian's nginx, in the official image's layout:
#                                   /etc/nginx/conf.d/*.conf included, no other server, logs to
#                                   stdout/stderr, CMD nginx -g 'daemon off;'.
#   with --vhostd BINARY: local/vhostd:KEY, the repo's Dockerfile built by the legacy builder with
#                                   BUILD_IMAGE/BASE_IMAGE = the local base and VHOSTD_PREBUILT = BINARY
#                                   (stripped, staged as target/docker/vhostd). Prints the tag on stdout.
#
# Cached between runs, keyed on content: the Debian images carry a label with the hash of this script
# and the apt mirror (rebuilt only when either changes: ~80 s cold, debootstrap dominates); the vhostd
# image's tag is the hash of the Dockerfile, .dockerignore, the binary and the base (a rebuild is a
# COPY and an install: seconds).
# Usage: scripts/images.sh [--vhostd BINARY] [STATE]   (STATE default: $TESTENV_STATE or /tmp/testenv)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
BIN=""; STATE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --vhostd) BIN=${2:?--vhostd BINARY}; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) STATE=$1 ;;
  esac
  shift
done
STATE=${STATE:-${TESTENV_STATE:-/tmp/testenv}}
STATE=$(cd "$STATE" && pwd)
export DOCKER_HOST=unix://$STATE/docker.sock
mkdir -p "$STATE/log"

say() { printf '[images %(%T)T] %s\n' -1 "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# The Debian mirror this machine already uses (on a non-Debian host: deb.debian.org).
SRC=/etc/apt/sources.list.d/debian.sources
MIRROR=""
if grep -qx 'ID=debian' /etc/os-release 2>/dev/null; then
  MIRROR=$(awk '/^URIs:/{print $2; exit}' "$SRC" 2>/dev/null || true)
  [ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
else
  SRC=/nonexistent
fi
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
KEY=$( { cat "$0"; echo "$MIRROR"; } | sha256sum | cut -c1-12)
BASE=local/debian-base:bookworm-$KEY
NGINX=local/debian-nginx:bookworm-$KEY

# has_key IMAGE -> 0 when IMAGE exists and was built from this KEY
has_key() {
  [ "$(docker image inspect -f '{{index .Config.Labels "vhostd.image-key"}}' "$1" 2>/dev/null)" = "$KEY" ]
}

# Trimmed like the -slim images: no docs, man pages, locales, apt lists or caches.
export_rootfs() { # export_rootfs ROOTFS TAG IMPORT-CHANGES...
  local r=$1 tag=$2; shift 2
  local changes=() c
  for c in "$@"; do changes+=(-c "$c"); done
  tar -C "$r" -c --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/info \
      --exclude=./usr/share/locale --exclude=./var/lib/apt/lists --exclude=./var/cache/apt \
      --exclude=./var/log/apt --exclude=./etc/resolv.conf --exclude=./proc . \
    | docker import -c "LABEL vhostd.image-key=$KEY" -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "${changes[@]}" - "$tag" >/dev/null
}

in_chroot() { # in_chroot ROOTFS LOG SHELL-COMMAND
  chroot "$1" sh -c "export DEBIAN_FRONTEND=noninteractive; $3" >>"$STATE/log/$2" 2>&1 \
    || { tail -20 "$STATE/log/$2" >&2; die "in chroot: $3 (log: $STATE/log/$2)"; }
}

build_debian() {
  if has_key "$BASE" && has_key "$NGINX" && has_key nginx:stable; then
    say "debian base and nginx images present ($KEY)"; return
  fi
  command -v debootstrap >/dev/null || die "debootstrap missing: run scripts/testenv/up.sh"
  local t0=$SECONDS
  local r; r=$(mktemp -d "$STATE/debian-rootfs.XXXXXX")
  # shellcheck disable=SC2064
  trap "umount '$r/proc' 2>/dev/null || true; rm -rf '$r'" EXIT
  debootstrap --variant=minbase bookworm "$r" "$MIRROR" >"$STATE/log/images-debootstrap.log" 2>&1 \
    || { tail -20 "$STATE/log/images-debootstrap.log" >&2; die "debootstrap failed"; }
  say "debootstrap done in $((SECONDS - t0))s"
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  if [ -f "$SRC" ]; then cp "$SRC" "$r/etc/apt/sources.list.d/"; rm -f "$r/etc/apt/sources.list"; fi
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"; chmod 755 "$r/usr/sbin/policy-rc.d"
  mount -t proc proc "$r/proc"
  in_chroot "$r" images-apt.log "apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates && apt-get clean"
  rm -f "$r/usr/sbin/policy-rc.d"
  export_rootfs "$r" "$BASE" 'CMD ["/bin/bash"]'
  say "imported $BASE"
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"; chmod 755 "$r/usr/sbin/policy-rc.d"
  in_chroot "$r" images-apt.log "apt-get install -y -qq --no-install-recommends nginx && apt-get clean"
  umount "$r/proc"
  rm -f "$r/usr/sbin/policy-rc.d"
  # The official image's layout: only conf.d/*.conf is served (Debian's default site would listen
  # on :80 of the host network), logs go to the container's stdout/stderr.
  rm -f "$r/etc/nginx/sites-enabled/default"
  mkdir -p "$r/etc/nginx/conf.d"
  ln -sf /dev/stdout "$r/var/log/nginx/access.log"
  ln -sf /dev/stderr "$r/var/log/nginx/error.log"
  export_rootfs "$r" "$NGINX" 'CMD ["nginx","-g","daemon off;"]' 'EXPOSE 80 443'
  docker tag "$NGINX" nginx:stable
  say "imported $NGINX, tagged nginx:stable, $((SECONDS - t0))s in all"
  prune local/debian-base "$BASE"; prune local/debian-nginx "$NGINX"
}

prune() { # prune REPOSITORY KEEP: untag older builds (an image still in use stays)
  local t
  for t in $(docker images "$1" --format '{{.Repository}}:{{.Tag}}'); do
    [ "$t" = "$2" ] || docker rmi "$t" >/dev/null 2>&1 || true
  done
}

build_vhostd() {
  [ -x "$BIN" ] || die "no executable at $BIN"
  local stage=$REPO/target/docker
  mkdir -p "$stage"
  strip -o "$stage/vhostd.$$" "$BIN" && mv "$stage/vhostd.$$" "$stage/vhostd"   # atomic for a parallel run
  local base_id; base_id=$(docker image inspect -f '{{.Id}}' "$BASE")
  local tag; tag=local/vhostd:$( { cat Dockerfile .dockerignore "$stage/vhostd"; echo "$base_id"; } | sha256sum | cut -c1-12)
  if docker image inspect "$tag" >/dev/null 2>&1; then say "image $tag present"; echo "$tag"; return; fi
  local t0=$SECONDS
  DOCKER_BUILDKIT=0 docker build -q -f Dockerfile -t "$tag" \
    --build-arg BUILD_IMAGE="$BASE" --build-arg BASE_IMAGE="$BASE" \
    --build-arg VHOSTD_PREBUILT=target/docker/vhostd . >"$STATE/log/images-vhostd-build.log" 2>&1 \
    || { tail -30 "$STATE/log/images-vhostd-build.log" >&2; die "docker build of the Dockerfile failed"; }
  say "built $tag from the Dockerfile in $((SECONDS - t0))s"
  prune local/vhostd "$tag"
  echo "$tag"
}

docker version >/dev/null 2>&1 || die "no dockerd at $DOCKER_HOST: run scripts/testenv/up.sh $STATE"
build_debian
[ -z "$BIN" ] || build_vhostd
