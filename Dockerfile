# Kaika on an NVIDIA GPU. Build: docker build -t kaika .   Run: docker run --gpus all --env-file .env kaika
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HOME=/home/kaika/.cache/huggingface \
    DATA_DIR=/data

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
COPY service ./service
COPY pipeline ./pipeline
COPY storage ./storage
# For ESRGAN-family upscalers (UPSCALER=...), also install torchvision for this torch and '.[gan]'.
RUN pip install .

USER kaika
VOLUME ["/data", "/home/kaika/.cache/huggingface"]
CMD ["kaika", "bot"]
