# Shared helpers for the ci/*.sh scripts (sourced, not run).
# shellcheck shell=bash

# Run as root directly, or through sudo when available.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Install Debian packages that are missing (a fresh CI machine has none of them).
ensure_debs() {
  local missing=() tool pkg
  for spec in "$@"; do
    tool=${spec%%:*}; pkg=${spec#*:}
    command -v "$tool" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "ci: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The Debian mirror this machine's apt uses (first deb URI of the main archive), else deb.debian.org.
debian_mirror() {
  local uri=""
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" && $0 ~ /debian/ && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}')
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# The security archive this machine's apt uses, else deb.debian.org's.
debian_security_mirror() {
  local uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i ~ /security/) {print $i; exit}}' "$f")
    [ -n "$uri" ] && break
  done
  echo "${DEBIAN_SECURITY_MIRROR:-${uri:-http://deb.debian.org/debian-security}}"
}

# buildah with the settings that work without a daemon, user namespaces or overlayfs.
BUILDAH_OPTS=(--storage-driver vfs)

# What the base image is made of; its tag carries a digest of all of it, so a change makes a new image.
BASE_SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,python3-pip,git,ca-certificates
EXTRA_CA_DIR="${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"
rootfs_key() {  # the cached rootfs tarball depends on suite, packages and mirror
  printf '%s %s %s %s v2' "$BASE_SUITE" "$BASE_PACKAGES" "$(debian_mirror)" "$(debian_security_mirror)" |
    sha256sum | cut -c1-12
}
base_key() {  # the image also carries the host's extra CA certificates
  { rootfs_key; cat "$EXTRA_CA_DIR"/*.crt 2>/dev/null; cat ci/make_base_image.sh; } | sha256sum | cut -c1-12
}
BASE_TAG="${BASE_TAG:-localhost/deeplab-nnapi-base:$BASE_SUITE-$(base_key)}"
