#!/usr/bin/env bash
# The main job, on any machine with internet access: the offline tests inside the image, then the whole build
# (the eight models from the pinned published weights, the probe and the delegation report, the patched
# benchmark_model for Android arm64 and the host), copied out to $OUT (default out/). No user input: every
# input is pinned in docker/Dockerfile.
#
#   bash ci/build_image.sh
#
# The engine: Docker with BuildKit when `docker info` answers (stages in parallel, `--output`); else buildah
# when it is installed (daemonless; STORAGE_DRIVER=vfs where overlayfs is missing, BUILDAH_ISOLATION, default
# chroot); else one line saying how to get either, exit 2. ENGINE=docker|buildah forces one.
# Extra build-args: EXTRA_BUILD_ARGS="--build-arg TF_COMMIT=<40-hex commit>" (e.g. WEIGHTS=checkpoint with
# the three CKPT_*_SHA256, which the build then requires).
# Expect ~2-3 h on 8 cores for the first build (two Bazel builds of TFLite), ~40 GB of disk for the layers.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out}"
args=()
# Google's checkpoints instead of the published models: WEIGHTS=checkpoint and the three checksums.
for name in WEIGHTS CKPT_PASCAL_TRAIN_AUG_8BIT_SHA256 CKPT_CITYSCAPES_TRAIN_SHA256 CKPT_ADE20K_TRAIN_SHA256; do
  if [ -n "${!name:-}" ]; then args+=(--build-arg "$name=${!name}"); fi
done
# shellcheck disable=SC2206
args+=(${EXTRA_BUILD_ARGS:-})

engine="${ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    engine=docker
  elif command -v buildah >/dev/null 2>&1; then
    engine=buildah
  else
    echo "build_image: error: no container engine: docker does not answer and buildah is not installed:" \
      "install Docker (https://docs.docker.com/engine/install/debian/) or buildah (apt-get install buildah)" >&2
    exit 2
  fi
fi

start=$(date +%s)
case "$engine" in
  docker)
    export DOCKER_BUILDKIT=1
    docker build "${args[@]}" --target check -t deeplab-nnapi:check -f docker/Dockerfile .
    echo "build_image: check stage passed in $(( $(date +%s) - start ))s (docker)"
    docker build "${args[@]}" --target artifacts --output "type=local,dest=$OUT" -f docker/Dockerfile .
    ;;
  buildah)
    bud=(buildah ${STORAGE_DRIVER:+--storage-driver "$STORAGE_DRIVER"} bud --format docker --layers=false
         --pull=false)
    [ -n "${BUILDAH_ISOLATION:-}" ] || bud+=(--isolation chroot)
    "${bud[@]}" "${args[@]}" --target check -t localhost/deeplab-nnapi:check -f docker/Dockerfile .
    echo "build_image: check stage passed in $(( $(date +%s) - start ))s (buildah)"
    "${bud[@]}" "${args[@]}" --target artifacts -t localhost/deeplab-nnapi:artifacts \
      --output "type=local,dest=$OUT" -f docker/Dockerfile .
    ;;
  *)
    echo "build_image: error: ENGINE=$engine: expected docker or buildah" >&2
    exit 2
    ;;
esac
echo "build_image: artifacts in $OUT/ after $(( $(date +%s) - start ))s ($engine)"
cat "$OUT/report/report.md"
