#!/usr/bin/env bash
# Real CI with a Docker engine and internet access: the offline tests inside the image, then the whole
# build (patched benchmark_model for Android arm64 and the host, the eight models, the delegation report),
# copied out to $OUT (default out/).
#
#   CKPT_PASCAL_TRAIN_AUG_8BIT_SHA256=... CKPT_CITYSCAPES_TRAIN_SHA256=... CKPT_ADE20K_TRAIN_SHA256=... \
#     bash ci/build_image.sh
#
# Uses BuildKit (`docker build --output`). Extra build-args: EXTRA_BUILD_ARGS="--build-arg TF_COMMIT=<40-hex commit>".
# Expect ~2-3 h on 8 cores for the first build (two Bazel builds of TFLite), ~40 GB of disk for the layers.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out}"
export DOCKER_BUILDKIT=1
args=()
for name in CKPT_PASCAL_TRAIN_AUG_8BIT_SHA256 CKPT_CITYSCAPES_TRAIN_SHA256 CKPT_ADE20K_TRAIN_SHA256; do
  if [ -n "${!name:-}" ]; then args+=(--build-arg "$name=${!name}"); fi
done
# shellcheck disable=SC2206
args+=(${EXTRA_BUILD_ARGS:-})

start=$(date +%s)
docker build "${args[@]}" --target check -t deeplab-nnapi:check -f docker/Dockerfile .
echo "build_image: check stage passed in $(( $(date +%s) - start ))s"
docker build "${args[@]}" --target artifacts --output "type=local,dest=$OUT" -f docker/Dockerfile .
echo "build_image: artifacts in $OUT/ after $(( $(date +%s) - start ))s"
cat "$OUT/report/report.md"
