# resetrelay in a container. The image runs the same entry points as the Procfile:
#   release:  docker run --rm --env-file .env resetrelay resetrelay migrate
#   web:      docker run -d -p 8000:8000 --env-file .env -e INLINE_WORKER=false resetrelay
#   worker:   docker run -d --env-file .env --no-healthcheck resetrelay resetrelay worker
# The default command, `resetrelay serve`, runs the worker inside the web process
# unless INLINE_WORKER=false. docs/deploy.md walks through it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000

RUN useradd --create-home --home-dir /app --uid 10001 --user-group resetrelay

# The pinned dependencies first (their layer is reused while requirements.txt is
# unchanged); the last line of requirements.txt, `.`, is the project itself.
COPY requirements.txt /tmp/requirements.txt
RUN grep -vx '\.' /tmp/requirements.txt > /tmp/pins.txt \
    && pip install -r /tmp/pins.txt \
    && rm /tmp/pins.txt /tmp/requirements.txt

COPY . /src
RUN pip install --no-deps /src && rm -rf /src

USER resetrelay
WORKDIR /app
EXPOSE 8000

# Liveness only: /readyz also says whether the database answers and is migrated.
# (A worker container serves no HTTP: run it with --no-healthcheck.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

# uvicorn finishes open requests for up to 20 s after SIGTERM: stop with -t 30.
STOPSIGNAL SIGTERM
CMD ["resetrelay", "serve"]
