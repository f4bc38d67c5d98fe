# SMASH Explorer: engine and dashboard in one image.
# CPU by default; the same image uses CUDA on a host with GPUs (docker run --gpus all),
# since the torch wheel it installs is a CUDA build that also runs on the CPU.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SMASH_WORKDIR=/data/runs

# tini reaps the engine's job processes and forwards Ctrl-C / docker stop to them;
# Debian's Fashion-MNIST is the embedded default data set; Chromium renders `smash graph`'s
# SVG, PNG and PDF files (through Kaleido); the engine's processes run on tcmalloc
# (engine/runtime/allocator.py).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini curl dataset-fashion-mnist chromium libtcmalloc-minimal4 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY engine ./engine
COPY store ./store
COPY app ./app
COPY cli ./cli
COPY configs ./configs
COPY streamlit_config.toml ./
RUN pip install --no-cache-dir torch==2.14.1 torchvision==0.29.1 \
 && pip install --no-cache-dir -e ".[cluster]"

RUN useradd --create-home --uid 1000 smash \
 && mkdir -p /data && chown smash:smash /data
USER smash
VOLUME ["/data"]
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8501/_stcore/health || exit 1

ENTRYPOINT ["/usr/bin/tini", "--"]
# Inside a container the dashboard must listen on all interfaces to be reachable through
# the published port, so by default it asks every visitor to log in (Streamlit's OIDC):
# mount a secrets.toml with an [auth] section and it starts, otherwise it exits saying so.
#   docker run -p 8501:8501 -v smash:/data \
#     -v "$PWD/secrets.toml:/app/.streamlit/secrets.toml:ro" IMAGE
# Without a login, publish to the host's loopback only and say so with --no-auth:
#   docker run -p 127.0.0.1:8501:8501 -v smash:/data IMAGE \
#     smash up --workdir /data/runs --config configs/demo.toml --address 0.0.0.0 --port 8501 --no-auth
CMD ["smash", "up", "--workdir", "/data/runs", "--config", "configs/demo.toml", "--address", "0.0.0.0", "--port", "8501"]
