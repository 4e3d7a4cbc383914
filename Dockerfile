# samizdat's operator image: `docker build -t samizdat:0.1.0 .`; the Helm chart runs it as `samizdat run`.
#
# The base is pinned to an exact Python patch release and Debian release, without a digest: no
# registry can be reached from where this file is written and tested, and a digest that nobody
# resolved is worse than none. Add `@sha256:...` (`docker buildx imagetools inspect <tag>`) when
# releasing. Python 3.11 is the version the project is developed and tested with.
ARG PYTHON_IMAGE=python:3.11.15-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/samizdat
ENV PATH=/opt/samizdat/bin:$PATH
WORKDIR /src
# The pinned dependencies come from pyproject.toml alone, in a layer of their own: editing the
# operator's code does not reinstall them; changing a pin does.
COPY pyproject.toml ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > requirements.txt \
    && pip install --requirement requirements.txt
# The package itself, as the README's setup installs it (pip install of the project), without dev extras.
COPY README.md ./
COPY operator/ operator/
RUN pip install --no-deps .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/samizdat/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=build /opt/samizdat /opt/samizdat
# A numeric user, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["samizdat"]
CMD ["run"]
