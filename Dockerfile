# Kaika on an NVIDIA GPU. Build: docker build -t kaika .
# Run: docker run --gpus all --env-file .env -v kaika-data:/data kaika   (see compose.yaml for whole set-ups)
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HOME=/home/kaika/.cache/huggingface \
    KAIKA_DATA_DIR=/data
# KAIKA_DATA_DIR wins over a DATA_DIR in an env file (.env.example's ./data would put the data outside
# the volume); to keep the data elsewhere, mount that place at /data.

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 kaika \
 && mkdir -p /data /home/kaika/.cache/huggingface \
 && chown -R kaika:kaika /data /home/kaika

WORKDIR /app
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# CUDA build of torch first, so the project's `torch>=2.4` is already satisfied.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124
COPY pyproject.toml README.md ./
COPY cli ./cli
COPY bot ./bot
COPY web ./web
COPY service ./service
COPY pipeline ./pipeline
COPY storage ./storage
# For ESRGAN-family upscalers (UPSCALER=...), also install torchvision for this torch and '.[gan]'.
RUN pip install .

USER kaika
VOLUME ["/data", "/home/kaika/.cache/huggingface"]
# The bot is healthy while connected to Discord (its heartbeat in /data); a worker container overrides
# this with `kaika healthcheck --worker` (see compose.yaml). Loading a model may take minutes at start.
HEALTHCHECK --interval=30s --timeout=20s --start-period=10m --retries=3 CMD ["kaika", "healthcheck"]
# SIGTERM (docker stop): the bot finishes running jobs for SHUTDOWN_GRACE seconds, parks the rest and
# exits within Docker's 10 s; a worker finishes its job first (give it a long stop timeout).
CMD ["kaika", "bot"]
