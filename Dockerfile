# careful-monitor service image. Build: docker build -t careful-monitor:0.1.0 .
# Stage 1 builds wheels for the package and every dependency; stage 2 installs only those wheels.
FROM python:3.11.11-slim-bookworm AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY careful_monitor ./careful_monitor
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin careful \
 && install -d -m 700 -o careful -g careful /home/careful/secrets   # a volume here keeps this owner
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels careful-monitor && rm -rf /wheels
USER 10001
WORKDIR /home/careful
EXPOSE 9308
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9308/healthz', timeout=3).status == 200 else 1)"]
ENTRYPOINT ["careful-monitor"]
CMD ["run", "--config", "/etc/careful-monitor/config.yaml"]
