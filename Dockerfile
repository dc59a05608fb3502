# syntax=docker/dockerfile:1
# World Weaver API: `docker build -t world-weaver .`, or docker-compose.full.yml.
# Two stages: the build stage installs the package and its dependencies into a virtualenv;
# the runtime stage copies only that virtualenv and runs it as an unprivileged user.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md LICENSE NOTICE ./
# The vendored embedding model lives inside the package (src/ww/embedding/models/), so
# copying src/ carries it into the wheel; no download at build or run time.
COPY src ./src
RUN pip install ".[api,server,otel]"

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 ww \
    && useradd --system --uid 10001 --gid ww --home-dir /home/ww --create-home --shell /usr/sbin/nologin ww \
    && mkdir -p /data \
    && chown ww:ww /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WW_API_HOST=0.0.0.0 \
    WW_API_PORT=8765 \
    WW_DATA_DIR=/data
USER ww
WORKDIR /home/ww
VOLUME ["/data"]
EXPOSE 8765
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8765/api/v1/health', timeout=4).status != 200)"]
CMD ["python", "-m", "ww.api.server"]
