# Pulse as a container image: `docker compose up` (docker-compose.yml) builds it, or
#   docker build -t pulse-exporter . && docker run -p 10135:10135 pulse-exporter
# Two stages: the first installs Pulse and its dependencies (wheels only, no compiler needed) into a
# virtual environment, the second copies that environment onto a fresh slim image without pip's
# caches or the sources. Runs as an unprivileged user; the health check uses Python, which the image
# has (slim images have no curl or wget).
FROM python:3.11.13-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY exporter ./exporter
# The `render` extra: the reports (matplotlib charts, WeasyPrint PDFs) that `reports.schedule` writes.
RUN python -m venv /opt/pulse \
    && /opt/pulse/bin/pip install --no-cache-dir --disable-pip-version-check ".[render]"

FROM python:3.11.13-slim-bookworm
# Pango and a font: what WeasyPrint needs to lay out a report's PDF.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/pulse /opt/pulse
# /var/lib/pulse: the working directory and Pulse's data directory (the incident journal, the reports),
# owned by Pulse's user so that a named volume mounted there (docker-compose.yml's) is writable by it.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/pulse --create-home pulse
ENV PATH=/opt/pulse/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /var/lib/pulse
USER 10001:10001
EXPOSE 10135
# /-/healthy answers while the process serves (/-/ready also waits for the config and collectors).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:10135/-/healthy', timeout=4)"]
ENTRYPOINT ["pulse-exporter"]
# Without --config.file Pulse runs on its embedded default config (host metrics); mount yours and pass
# --config.file=/etc/pulse/pulse.yml (docker-compose.yml does).
CMD ["--web.listen-address=:10135"]
