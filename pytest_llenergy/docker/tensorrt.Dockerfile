# The TensorRT-LLM backend on NVIDIA's TensorRT-LLM release image. Versions and the base image
# (pin it by digest: scripts/pin_base_images.sh) come from pytest_llenergy/docker/.env through compose.build.yaml's
# build args; build with
#   docker compose -f pytest_llenergy/docker/compose.yaml -f pytest_llenergy/docker/compose.build.yaml build tensorrt
# The build context is the repository root (see tensorrt.Dockerfile.dockerignore).
ARG TENSORRT_LLM_IMAGE
FROM ${TENSORRT_LLM_IMAGE}

ARG TENSORRT_LLM_VERSION
ARG NVIDIA_ML_PY_VERSION
ARG LEM_VERSION=dev
LABEL org.llenergy.version="${LEM_VERSION}" \
      org.llenergy.backend="tensorrt" \
      org.opencontainers.image.title="pytest-llenergy TensorRT-LLM backend"

SHELL ["/bin/sh", "-eu", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/cache/huggingface \
    TORCHINDUCTOR_CACHE_DIR=/cache/torchinductor \
    HOME=/cache/home

COPY pyproject.toml README.md pytest_llenergy/docker/constraints.txt /opt/pytest-llenergy/
COPY pytest_llenergy /opt/pytest-llenergy/pytest_llenergy
COPY pytest_llenergy/docker/install-plugin.sh /usr/local/bin/lem-install-plugin
RUN python3 -c "import importlib.metadata as m, sys; v = m.version('tensorrt_llm'); sys.exit(0 if v.startswith('${TENSORRT_LLM_VERSION}') else 'base image has tensorrt_llm ' + v + ', pytest_llenergy/docker/.env pins ${TENSORRT_LLM_VERSION}')" \
    && HOLD="tensorrt_llm tensorrt torch transformers numpy" lem-install-plugin "nvidia-ml-py==${NVIDIA_ML_PY_VERSION}"

ENTRYPOINT []
WORKDIR /workspace
# Never root: compose sets the uid (PUID/PGID, dispatch.user); by hand it is this user.
USER 1000:1000
CMD ["sleep", "infinity"]
