# taskbot: Python + Node (for the npm MCP servers), non-root, health check on /healthz.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends git nodejs npm curl \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 taskbot
WORKDIR /app
COPY --chown=taskbot:taskbot . /app
USER taskbot
RUN ./scripts/setup.sh

ENV TASKBOT_DATA_DIR=/app/data
EXPOSE 8080
HEALTHCHECK --interval=60s --timeout=5s --start-period=30s \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# `taskbot demo` needs no token; `taskbot run` needs BOT_TOKEN in the environment.
CMD [".venv/bin/taskbot", "run"]
