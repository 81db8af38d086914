#!/usr/bin/env bash
# Makes sure the base images the Dockerfile names (debian:bookworm, debian:bookworm-slim) exist in
# the local Docker engine. Present: nothing to do. Missing: `docker pull`; when the pull fails (no
# access to Docker Hub), build them from Debian's mirror with debootstrap and `docker import`.
# Both tags then name the same minimal Debian 12 (debootstrap --variant=minbase), which is what
# bookworm-slim is; the build stage installs what it needs on top with apt-get.
#   scripts/docker-base-images.sh           (root, or a user in the docker group with sudo)
# Env: DEBIAN_MIRROR (default http://deb.debian.org/debian), DOCKER (default docker).
set -euo pipefail
DOCKER=${DOCKER:-docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
images=(debian:bookworm debian:bookworm-slim)

missing=()
for img in "${images[@]}"; do
  $DOCKER image inspect "$img" >/dev/null 2>&1 || missing+=("$img")
done
[ ${#missing[@]} -eq 0 ] && exit 0

still=()
for img in "${missing[@]}"; do
  if timeout 60 $DOCKER pull -q "$img" >/dev/null 2>&1; then
    echo "pulled $img"
  else
    still+=("$img")
  fi
done
[ ${#still[@]} -eq 0 ] && exit 0

echo "cannot pull ${still[*]}: building a Debian 12 root file system with debootstrap"
command -v debootstrap >/dev/null || {
  echo "debootstrap missing (apt-get install debootstrap)" >&2
  exit 1
}
root=$(mktemp -d /tmp/canary-bookworm-XXXXXX)
cleanup() { $SUDO rm -rf "$root"; }
trap cleanup EXIT
$SUDO timeout 900 debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || {
  tail -20 "$root.log" >&2
  rm -f "$root.log"
  exit 1
}
rm -f "$root.log"
# Same apt sources as the official image, and no package lists or caches in the image.
echo "deb $MIRROR bookworm main" | $SUDO tee "$root/etc/apt/sources.list" >/dev/null
echo "deb $MIRROR bookworm-updates main" | $SUDO tee -a "$root/etc/apt/sources.list" >/dev/null
echo "deb http://deb.debian.org/debian-security bookworm-security main" |
  $SUDO tee -a "$root/etc/apt/sources.list" >/dev/null
$SUDO rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
first=${still[0]}
$SUDO tar -C "$root" -c . | $DOCKER import \
  -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - "$first" >/dev/null
for img in "${still[@]:1}"; do $DOCKER tag "$first" "$img"; done
echo "built ${still[*]} from $MIRROR"
