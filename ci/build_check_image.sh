#!/usr/bin/env bash
# Build the Dockerfile's `check` stage with buildah (no daemon, no registry): installs deeplab-nnapi with
# its test extra inside the image and runs the offline tests there, proving the Dockerfile's own steps.
#
#   bash ci/build_check_image.sh
#
# The build context is a temporary copy of the repository (tracked and untracked-but-not-ignored files)
# plus the reference material at reference/ (from $DEEPLAB_NNAPI_REFERENCE or ../shared/reference), so the
# reference models never enter the repository. The base image comes from ci/make_base_image.sh (debootstrap)
# and is made first when no image with its tag (a digest of its inputs) exists. Prints the build time and
# the image size.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/_common.sh
. ci/_common.sh
CHECK_TAG="${CHECK_TAG:-localhost/deeplab-nnapi-check:latest}"

ensure_debs buildah:buildah debootstrap:debootstrap
if ! as_root buildah "${BUILDAH_OPTS[@]}" inspect --type image "$BASE_TAG" >/dev/null 2>&1; then
  bash ci/make_base_image.sh
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
  done | xargs -0 cp --parents -t "$ctx"
else
  cp -a . "$ctx"
fi
ref="${DEEPLAB_NNAPI_REFERENCE:-$(cd .. && pwd)/shared/reference}"
if [ -d "$ref" ]; then
  cp -r "$ref" "$ctx/reference"
  chmod -R u+w "$ctx/reference"
  echo "build_check_image: reference material from $ref"
else
  echo "build_check_image: warning: no reference material at $ref; tests that need it will skip" >&2
fi

start=$(date +%s)
as_root buildah "${BUILDAH_OPTS[@]}" bud --isolation chroot --pull=never --layers=false --format docker \
  --target check --build-arg "BASE_IMAGE=$BASE_TAG" -t "$CHECK_TAG" -f docker/Dockerfile "$ctx"
secs=$(( $(date +%s) - start ))
size=$(as_root buildah "${BUILDAH_OPTS[@]}" images --format '{{.Size}}' "$CHECK_TAG" | head -n 1)
echo "build_check_image: check stage built in ${secs}s; image $CHECK_TAG is $size"
