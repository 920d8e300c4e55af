#!/bin/sh
# apt-snapshot [TIMESTAMP]: point apt at snapshot.debian.org as of TIMESTAMP (e.g. 20250601T000000Z), so that
# the Dockerfile's version-pinned Debian packages stay installable after Debian has superseded them.
# Without a timestamp, nothing changes (the base image's own sources are used).
set -eu
[ -n "${1:-}" ] || exit 0
rm -f /etc/apt/sources.list.d/*
cat > /etc/apt/sources.list <<EOT
deb [check-valid-until=no] http://snapshot.debian.org/archive/debian/$1 bookworm bookworm-updates main
deb [check-valid-until=no] http://snapshot.debian.org/archive/debian-security/$1 bookworm-security main
EOT
