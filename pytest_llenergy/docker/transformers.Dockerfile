# The transformers backend on PyTorch's CUDA runtime image. Versions and the base image
# (pin it by digest: scripts/pin_base_images.sh) come from pytest_llenergy/docker/.env through compose.build.yaml's
# build args; build with
#   docker compose -f pytest_llenergy/docker/compose.yaml -f pytest_llenergy/docker/compose.build.yaml build transformers
# The build context is the repository root (see transformers.Dockerfile.dockerignore).
ARG PYTORCH_IMAGE
FROM ${PYTORCH_IMAGE}

ARG TORCH_VERSION
ARG TORCH_CUDA
ARG TRANSFORMERS_VERSION
ARG ACCELERATE_VERSION
ARG NVIDIA_ML_PY_VERSION
ARG LEM_VERSION=dev
LABEL org.llenergy.version="${LEM_VERSION}" \
      org.llenergy.backend="transformers" \
      org.llenergy.cuda="${TORCH_CUDA}" \
      org.opencontainers.image.title="pytest-llenergy transformers backend"

SHELL ["/bin/sh", "-eu", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/cache/huggingface \
    TORCHINDUCTOR_CACHE_DIR=/cache/torchinductor \
    HOME=/cache/home

COPY pyproject.toml README.md pytest_llenergy/docker/constraints.txt /opt/pytest-llenergy/
COPY pytest_llenergy /opt/pytest-llenergy/pytest_llenergy
COPY pytest_llenergy/docker/install-plugin.sh /usr/local/bin/lem-install-plugin
RUN python3 -c "import torch, sys; v = torch.__version__.split('+')[0]; sys.exit(0 if v == '${TORCH_VERSION}' else 'base image has torch ' + v + ', pytest_llenergy/docker/.env pins ${TORCH_VERSION}')" \
    && HOLD="torch" lem-install-plugin "transformers==${TRANSFORMERS_VERSION}" "accelerate==${ACCELERATE_VERSION}" \
       "nvidia-ml-py==${NVIDIA_ML_PY_VERSION}"

WORKDIR /workspace
# Never root: compose sets the uid (PUID/PGID, dispatch.user); by hand it is this user.
USER 1000:1000
CMD ["sleep", "infinity"]
