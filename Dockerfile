# careful-monitor service image. Build: docker build -t careful-monitor .
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY careful_monitor ./careful_monitor
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin careful
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
WORKDIR /home/careful
EXPOSE 9308
HEALTHCHECK --interval=15s --timeout=5s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9308/healthz', timeout=3).status == 200 else 1)"
ENTRYPOINT ["careful-monitor"]
CMD ["run", "--config", "/etc/careful-monitor/config.yaml"]
