# The transformers backend on PyTorch's CUDA runtime image. Versions come from docker/versions.env
# (through the generated docker/.env and compose's build args); build with
#   docker compose -f docker/compose.yaml --env-file docker/.env build transformers
# The build context is the repository root (see transformers.Dockerfile.dockerignore).
ARG PYTORCH_IMAGE
FROM ${PYTORCH_IMAGE}

ARG TORCH_VERSION
ARG TRANSFORMERS_VERSION
ARG ACCELERATE_VERSION
ARG NVIDIA_ML_PY_VERSION
ARG LEM_VERSION=dev
LABEL org.llenergy.version="${LEM_VERSION}" \
      org.llenergy.backend="transformers" \
      org.opencontainers.image.title="pytest-llenergy transformers backend"

SHELL ["/bin/sh", "-eu", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/cache/huggingface \
    HOME=/cache/home

COPY pyproject.toml README.md /opt/pytest-llenergy/
COPY pytest_llenergy /opt/pytest-llenergy/pytest_llenergy
COPY docker/install-plugin.sh /usr/local/bin/lem-install-plugin
RUN python3 -c "import torch, sys; v = torch.__version__.split('+')[0]; sys.exit(0 if v == '${TORCH_VERSION}' else 'base image has torch ' + v + ', versions.env pins ${TORCH_VERSION}')" \
    && HOLD="torch" lem-install-plugin "transformers==${TRANSFORMERS_VERSION}" "accelerate==${ACCELERATE_VERSION}" \
       "nvidia-ml-py==${NVIDIA_ML_PY_VERSION}"

WORKDIR /workspace
CMD ["sleep", "infinity"]
