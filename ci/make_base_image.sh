#!/usr/bin/env bash
# Make the local base image the check-stage build starts from, without any registry:
# debootstrap a minimal Debian bookworm rootfs (python3, venv, pip, git, CA certificates) from the Debian
# mirror this machine's apt uses, tar it, and import it with buildah (FROM scratch + ADD rootfs.tar).
#
#   bash ci/make_base_image.sh    # tag: $BASE_TAG (default localhost/deeplab-nnapi-base:bookworm-<digest>)
#
# The rootfs tarball is cached in ${XDG_CACHE_HOME:-~/.cache}/deeplab-nnapi (keyed by suite, packages and
# mirror) and reused when present; it is never required. Set DEBIAN_MIRROR to override the mirror,
# NO_CACHE=1 to ignore the cache. Needs root (debootstrap); installs debootstrap and buildah if missing.
#
# The CA certificates this machine adds to its trust store (EXTRA_CA_DIR, default
# /usr/local/share/ca-certificates, e.g. a TLS-intercepting egress proxy's CA) are added to the image as a
# layer of their own, so that pip and apt inside the image build trust what the host trusts. They are not
# part of the cached rootfs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/_common.sh
. ci/_common.sh

SUITE=$BASE_SUITE
PACKAGES=$BASE_PACKAGES
MIRROR=$(debian_mirror)
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/deeplab-nnapi"
KEY=$(rootfs_key)
TARBALL="$CACHE_DIR/rootfs-$SUITE-$KEY.tar"

ensure_debs debootstrap:debootstrap buildah:buildah
start=$(date +%s)

if [ -s "$TARBALL" ] && [ -z "${NO_CACHE:-}" ]; then
  echo "make_base_image: using cached rootfs $TARBALL"
else
  echo "make_base_image: debootstrap $SUITE from $MIRROR (+ $PACKAGES)"
  mkdir -p "$CACHE_DIR"
  work=$(mktemp -d)
  trap 'as_root rm -rf "$work"' EXIT
  as_root debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR" \
    > "$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  # Slim and make it deterministic-ish: no package caches, no logs, no machine id.
  as_root rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
    "$work"/rootfs/var/log/* "$work"/rootfs/tmp/* "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/*
  as_root truncate -s 0 "$work/rootfs/etc/machine-id"
  # Like debian:bookworm-slim: the release, its updates and the security archive.
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' "$MIRROR" "$SUITE" \
    "$MIRROR" "$SUITE" "$(debian_security_mirror)" "$SUITE" | as_root tee "$work/rootfs/etc/apt/sources.list" >/dev/null
  as_root tar --numeric-owner --sort=name --mtime=@0 -C "$work/rootfs" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
fi
echo "make_base_image: rootfs $(du -h "$TARBALL" | cut -f1) in $(( $(date +%s) - start ))s"

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"; [ -n "${work:-}" ] && as_root rm -rf "$work"' EXIT
ln "$TARBALL" "$ctx/rootfs.tar" 2>/dev/null || cp "$TARBALL" "$ctx/rootfs.tar"
printf 'FROM scratch\nADD rootfs.tar /\nENV LANG=C.UTF-8\nCMD ["/bin/bash"]\n' > "$ctx/Containerfile"
mkdir "$ctx/extra-ca"
find "$EXTRA_CA_DIR" -maxdepth 1 -name '*.crt' -type f -exec cp -t "$ctx/extra-ca" {} + 2>/dev/null || true
if [ -n "$(ls -A "$ctx/extra-ca")" ]; then
  echo "make_base_image: adding the host's extra CA certificates: $(ls "$ctx/extra-ca" | tr '\n' ' ')"
  printf 'COPY extra-ca/ /usr/local/share/ca-certificates/\nRUN update-ca-certificates >/dev/null 2>&1\n' >> "$ctx/Containerfile"
fi
as_root buildah "${BUILDAH_OPTS[@]}" bud --isolation chroot --quiet \
  --label "org.deeplab-nnapi.rootfs-key=$KEY" -t "$BASE_TAG" -f "$ctx/Containerfile" "$ctx" >/dev/null
echo "make_base_image: imported $BASE_TAG in $(( $(date +%s) - start ))s total"
