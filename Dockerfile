# syntax=docker/dockerfile:1
#
# wxhub: one image, two entry points.
#
#   API (the default command):  docker run -p 8000:8000 -e DB_HOST=... IMAGE
#                               = python -m wxhub.api   (gunicorn on 0.0.0.0:$PORT, $WEB_CONCURRENCY)
#   Ingestion job:              docker run -e DB_HOST=... IMAGE python -m wxhub.ingestion SOURCE...
#                               (= wxhub run: migrate, ingest, aggregate; SOURCE is a folder or
#                               s3://bucket/prefix/)
#   Migrations only:            docker run -e DB_HOST=... IMAGE wxhub migrate
#
# Run it with an init process (`docker run --init`, compose `init: true`, ECS
# `initProcessEnabled`): Python as PID 1 ignores SIGTERM unless it installs a handler, which the
# job does not, so `docker stop` would wait for the kill timeout.
#
# With a read-only root filesystem, mount a writable /tmp (the loader stages LOAD DATA files
# there, gunicorn keeps its worker heartbeat files there).

# The base image by digest, not by tag alone: a tag moves every time Docker Hub rebuilds it, so
# the same commit could build on different bytes. The digest is the multi-platform index of
# python:3.12-slim-bookworm as it was when last refreshed; it does not move by itself, so
# refresh it (docs/deployment.md, "The base image"): at least monthly, and whenever the deploy's
# ECR scan reports HIGH or CRITICAL findings in Debian or Python packages:
#   docker buildx imagetools inspect python:3.12-slim-bookworm | sed -n 's/^Digest: *//p'
ARG PYTHON_IMAGE=python:3.12-slim-bookworm@sha256:782412e85d0f0984994c290652577d4018aff08145c85b262bb63dc0c7522254

# --- builder: the wheel of this repository and the wheels of its dependencies ---------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
# Only what the wheel is built from: a change to tests or docs does not rebuild this layer.
COPY pyproject.toml README.md ./
COPY src ./src
# One resolver run: wxhub's wheel (built in an isolated environment from pyproject's
# build-system) and every dependency as a wheel, so the runtime stage needs no index and no
# compiler. Every dependency ships manylinux wheels; nothing is compiled here either.
RUN pip wheel --wheel-dir /wheels .

# --- runtime: the wheels installed into a clean slim Python, nothing else -------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG APP_UID=10001
ARG APP_GID=10001

# PYTHONDONTWRITEBYTECODE: pip compiles the installed modules once at build time; at run time
# nothing is written next to them (the root filesystem may be read-only).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    WXHUB_LOG_FORMAT=json \
    PORT=8000

# A fixed uid/gid so volume ownership and Kubernetes/ECS runAsNonRoot checks are predictable;
# a home of its own for anything that writes under $HOME (gunicorn >= 25.1 puts its control
# socket in ~/.gunicorn unless the server turns it off) when the root filesystem is writable.
RUN groupadd --system --gid "${APP_GID}" wxhub \
    && useradd --system --uid "${APP_UID}" --gid wxhub --create-home --home-dir /home/wxhub \
        --shell /usr/sbin/nologin wxhub

# The wheels come in through a bind mount, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/wxhub-*.whl

# The RDS CA bundle (every region's RDS certificate authorities), where wxhub.db.tls looks by
# default (WXHUB_DB_CA_FILE): the app verifies the database's certificate against it, the
# default for an RDS host. Fetched over HTTPS from AWS's trust store at build time, so a rebuild
# picks up the CAs AWS adds; readable by the app user, owned by root.
ADD --chmod=644 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem \
    /etc/ssl/certs/rds-global-bundle.pem

# The working directory belongs to the app user: without any database setting the app falls
# back to ./wxhub.db (SQLite), which must be writable for a quick `docker run` on a laptop.
WORKDIR /app
RUN chown wxhub:wxhub /app

# Numeric, so an orchestrator can verify "not root" without reading /etc/passwd.
USER ${APP_UID}:${APP_GID}

EXPOSE 8000

# Liveness only (/healthz never touches the database). No curl in slim: Python's urllib, which
# raises (exit 1) on a refused connection, a timeout or any non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

CMD ["python", "-m", "wxhub.api"]
