# The vLLM backend on the official vLLM image, which brings its own torch and CUDA. Versions and the base image
# (pin it by digest: scripts/pin_base_images.sh) come from pytest_llenergy/docker/.env through compose.build.yaml's
# build args; build with
#   docker compose -f pytest_llenergy/docker/compose.yaml -f pytest_llenergy/docker/compose.build.yaml build vllm
# The build context is the repository root (see vllm.Dockerfile.dockerignore).
ARG VLLM_IMAGE
FROM ${VLLM_IMAGE}

ARG VLLM_VERSION
ARG NVIDIA_ML_PY_VERSION
ARG LEM_VERSION=dev
LABEL org.llenergy.version="${LEM_VERSION}" \
      org.llenergy.backend="vllm" \
      org.opencontainers.image.title="pytest-llenergy vLLM backend"

SHELL ["/bin/sh", "-eu", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/cache/huggingface \
    TORCHINDUCTOR_CACHE_DIR=/cache/torchinductor \
    HOME=/cache/home \
    VLLM_NO_USAGE_STATS=1 \
    DO_NOT_TRACK=1

COPY pyproject.toml README.md pytest_llenergy/docker/constraints.txt /opt/pytest-llenergy/
COPY pytest_llenergy /opt/pytest-llenergy/pytest_llenergy
COPY pytest_llenergy/docker/install-plugin.sh /usr/local/bin/lem-install-plugin
RUN python3 -c "import vllm, sys; v = vllm.__version__; sys.exit(0 if v.startswith('${VLLM_VERSION}') else 'base image has vllm ' + v + ', pytest_llenergy/docker/.env pins ${VLLM_VERSION}')" \
    && HOLD="vllm torch transformers xformers triton flashinfer-python numpy" lem-install-plugin "nvidia-ml-py==${NVIDIA_ML_PY_VERSION}"

# The official image starts the OpenAI server; dispatch runs pytest instead.
ENTRYPOINT []
WORKDIR /workspace
# Never root: compose sets the uid (PUID/PGID, dispatch.user); by hand it is this user.
USER 1000:1000
CMD ["sleep", "infinity"]
