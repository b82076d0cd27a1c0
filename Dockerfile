# Slotguard: one image for every process of the Procfile (web, worker, scheduler).
#   docker build -t slotguard .
#   docker compose up         (see docker-compose.yml and README "Running in production")
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SLOTGUARD_ENV=production \
    LOG_FORMAT=json \
    PORT=5000 \
    PROMETHEUS_MULTIPROC_DIR=/run/slotguard/prometheus

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN useradd --system --uid 10001 --home-dir /app slotguard \
    && mkdir -p /app/instance /run/slotguard/prometheus \
    && chown -R slotguard /app/instance /run/slotguard
USER slotguard

EXPOSE 5000
# The Procfile's `web`; compose overrides it for `worker` and `scheduler`.
CMD ["sh", "-c", "gunicorn --config gunicorn.conf.py wsgi:app"]
