#!/usr/bin/env bash
# Pin the base images of pytest_llenergy/docker/.env by digest: PYTORCH_IMAGE=pytorch/pytorch:<tag> becomes
# pytorch/pytorch:<tag>@sha256:<digest>, so a rebuild uses exactly the same base even if the tag moves.
# Needs a registry (pulls each base image once); run it where one is reachable, then commit pytest_llenergy/docker/.env.
#   bash scripts/pin_base_images.sh [pytest_llenergy/docker/.env]
set -euo pipefail
ENV_FILE=${1:-"$(dirname "$0")/../pytest_llenergy/docker/.env"}
for key in PYTORCH_IMAGE VLLM_IMAGE TENSORRT_LLM_IMAGE; do
  ref=$(sed -n "s/^${key}=//p" "$ENV_FILE")
  [ -n "$ref" ] || { echo "pin_base_images: $key not in $ENV_FILE" >&2; exit 1; }
  name=${ref%@*}
  docker pull --quiet "$name" >/dev/null
  digest=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$name" | sed -n 's/.*@//p' | head -n 1)
  [ -n "$digest" ] || { echo "pin_base_images: no digest for $name" >&2; exit 1; }
  sed -i "s|^${key}=.*|${key}=${name}@${digest}|" "$ENV_FILE"
  echo "$key=${name}@${digest}"
done
