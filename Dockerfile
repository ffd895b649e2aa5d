# naftiko-runtime: `naftiko run` in a slim, non-root image (docs/deploy.md).
#
#   docker build -t naftiko-runtime .
#   docker run -p 8080:8080 -v "$PWD/capabilities:/capabilities:ro" -e VAPI_API_KEY naftiko-runtime
#
# The capabilities are read from /capabilities (every capability file in it: mount a directory or
# a Kubernetes ConfigMap there); arguments after the image name replace that path and add flags:
#   docker run naftiko-runtime /capabilities --mock --workers auto

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# ---- build: a virtual environment with the runtime and its dependencies (wheels, and one pure-Python
#      source package, openapi-ui-bundles: the slim base has no compiler, and none is needed)
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY naftiko_runtime ./naftiko_runtime
COPY schemas ./schemas
RUN python -m venv /opt/naftiko \
    && /opt/naftiko/bin/pip install --no-cache-dir . \
    && /opt/naftiko/bin/python -m compileall -q /opt/naftiko

# ---- runtime: the environment alone, no compiler, no pip cache, not root
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/naftiko/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 naftiko \
    && useradd --system --uid 10001 --gid naftiko --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin naftiko
COPY --from=build /opt/naftiko /opt/naftiko
COPY capabilities /capabilities
USER 10001:10001
EXPOSE 8080 9090
# SIGTERM drains (readiness 503, in-flight requests finish within --grace-period), exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["naftiko", "run", "--host", "0.0.0.0"]
CMD ["/capabilities"]
