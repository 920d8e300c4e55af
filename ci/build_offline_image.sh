#!/usr/bin/env bash
# Opt-in: build every stage of docker/Dockerfile that needs neither GitHub nor Google downloads, with buildah
# and local trees, and copy the results out: sources (from the local trees), probe, export, verify, proof.
# Not android-sdk and toolchain (benchmark_model needs the Android SDK/NDK and Bazel's downloads).
#
#   TF_DIR=~/src/LiteRT MODELS_DIR=~/src/models bash ci/build_offline_image.sh
#
# Environment:
#   TF_DIR             a TensorFlow 2.x or LiteRT tree (required)
#   MODELS_DIR         a tensorflow/models tree, e.g. at 6fb5646f (required)
#   WEIGHTS_DIR        the eight published models (default: $DEEPLAB_NNAPI_REFERENCE/models, else
#                      ../shared/reference/models); each is checked against its pinned sha256
#   TF_DIR_COMMIT, MODELS_DIR_COMMIT   the trees' commits when they are not git checkouts (for the report)
#   OUT                where the results go (default out/); TARGET (default proof)
#   KEEP_IMAGE=1       keep the built image (default: removed, vfs storage is large)
#   EXTRA_BUILD_ARGS   more --build-arg NAME=VALUE words for tools/build_image.py
#
# Makes the debootstrap base image first when it is missing (ci/make_base_image.sh). Uses buildah with the
# vfs driver and chroot isolation, as ci/build_check_image.sh does, through tools/build_image.py --engine
# buildah, which prints the seconds per stage. Needs PyPI and the Debian mirror, nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build_offline_image: error: $*" >&2; exit 2; }

[ -n "${TF_DIR:-}" ] || die "TF_DIR is not set: name a TensorFlow 2.x or LiteRT tree (TF_DIR=~/src/LiteRT)"
[ -d "$TF_DIR" ] || die "TF_DIR=$TF_DIR is not a directory"
[ -n "${MODELS_DIR:-}" ] || die "MODELS_DIR is not set: name a tensorflow/models tree (MODELS_DIR=~/src/models)"
[ -d "$MODELS_DIR" ] || die "MODELS_DIR=$MODELS_DIR is not a directory"
if [ -z "${WEIGHTS_DIR:-}" ]; then
  WEIGHTS_DIR="${DEEPLAB_NNAPI_REFERENCE:-$(cd .. && pwd)/shared/reference}/models"
fi
[ -d "$WEIGHTS_DIR" ] || die "WEIGHTS_DIR=$WEIGHTS_DIR is not a directory: set WEIGHTS_DIR to a directory with the eight published models (this build cannot download them)"
TARGET="${TARGET:-proof}"
OUT="${OUT:-out}"
case "$TARGET" in
  proof|verify|export|probe|sources|inputs) ;;
  *) die "TARGET=$TARGET needs GitHub or Google downloads (android-sdk, toolchain): use proof (default), verify, export, probe, sources or inputs" ;;
esac
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || die "$PY not found (set PYTHON)"

# shellcheck source=ci/_common.sh
. ci/_common.sh
ensure_debs buildah:buildah debootstrap:debootstrap
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
if ! as_root buildah "${BUILDAH_OPTS[@]}" inspect --type image "$BASE_TAG" >/dev/null 2>&1; then
  bash ci/make_base_image.sh
fi

args=(--engine buildah --target "$TARGET" --build-arg "BASE_IMAGE=$BASE_TAG" --tag "localhost/deeplab-nnapi:offline-$TARGET"
      --tf-dir "$TF_DIR" --models-dir "$MODELS_DIR" --weights-dir "$WEIGHTS_DIR")
[ -n "${TF_DIR_COMMIT:-}" ] && args+=(--build-arg "TF_DIR_COMMIT=$TF_DIR_COMMIT")
[ -n "${MODELS_DIR_COMMIT:-}" ] && args+=(--build-arg "MODELS_DIR_COMMIT=$MODELS_DIR_COMMIT")
[ "$TARGET" = proof ] && args+=(--output "$OUT")
# shellcheck disable=SC2206
args+=(${EXTRA_BUILD_ARGS:-})

echo "build_offline_image: free disk before: $(df -h --output=avail /var/lib/containers 2>/dev/null | tail -n 1 | tr -d ' ')"
status=0
as_root env STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot "$PY" tools/build_image.py "${args[@]}" || status=$?
if [ -z "${KEEP_IMAGE:-}" ]; then
  as_root buildah "${BUILDAH_OPTS[@]}" rmi "localhost/deeplab-nnapi:offline-$TARGET" >/dev/null 2>&1 || true
fi
echo "build_offline_image: free disk after: $(df -h --output=avail /var/lib/containers 2>/dev/null | tail -n 1 | tr -d ' ')"
[ "$status" -eq 0 ] || exit "$status"
if [ "$TARGET" = proof ]; then
  echo "build_offline_image: $OUT/:"
  (cd "$OUT" && find . -type f -printf '%s\t%p\n' | sort -k2 | awk -F'\t' '{printf "  %10d  %s\n", $1, $2}')
  cat "$OUT/report/report.md"
fi
