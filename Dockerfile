# One image for every harmwatch service (crawler, analyzer, indexer, ui); the command differs.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HARMWATCH_VAR_DIR=/data \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /home/harmwatch harmwatch \
 && mkdir -p /data && chown harmwatch:harmwatch /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY harmwatch ./harmwatch
COPY crawlers ./crawlers
COPY classifiers ./classifiers
COPY consumers ./consumers
COPY review_ui ./review_ui
COPY models ./models
COPY services ./services
COPY bench ./bench
COPY docs ./docs
RUN pip install --no-cache-dir -e . \
 && harmwatch setup \
 && chown -R harmwatch:harmwatch /app

USER harmwatch
VOLUME ["/data"]
CMD ["harmwatch", "--help"]
