# ngsi-ld-broker: a slim image that runs as a non-root user, health-checked on /health.
#   docker build -t ngsi-ld-broker .
#   docker run -p 1026:1026 -v ngsi-ld-data:/data ngsi-ld-broker
#   docker run -p 1026:1026 ngsi-ld-broker ngsi-ld-broker demo     # the Hong Kong demo
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY broker broker
COPY ngsi_ld ngsi_ld
COPY storage storage
COPY subscriptions subscriptions
COPY contexts contexts
# the built explorer ships inside broker/explorer/static: no Node.js here
RUN pip install '.[mongodb]' \
    && useradd --create-home --uid 10001 broker \
    && mkdir /data && chown broker /data \
    && rm -rf /src

USER broker
WORKDIR /data
ENV NGSI_LD_STORE=sqlite:///data/broker.db
EXPOSE 1026
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:1026/health', timeout=2)"
CMD ["ngsi-ld-broker"]
