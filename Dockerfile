# coldchain production image: `coldchain api` and `coldchain worker` (see docker-compose.yml).
#
#   docker build -t coldchain .
#   docker run --rm coldchain --help
#
# Every runtime dependency is pinned in pyproject.toml. On linux/amd64 all of them
# (chdb alone is ~530 MB) install from binary wheels, so no compiler is needed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Only what the package build needs: pyproject.toml (whose `readme` is README.md), the
# four packages, and constraints.txt so that the image gets the very dependency versions
# that CI tested (pyproject.toml pins only the direct ones). The source tree is removed
# after the install; the code runs from site-packages.
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY schemas ./schemas
COPY pipeline ./pipeline
COPY connectors ./connectors
COPY coldchain ./coldchain
RUN pip install --no-cache-dir -c constraints.txt . \
    && cd / \
    && rm -rf /src

# Run as an unprivileged user. Its home is the working directory and is writable: a faust
# worker keeps its local `<app id>-data` directory in the working directory.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/coldchain \
    --shell /usr/sbin/nologin coldchain
USER coldchain:coldchain
WORKDIR /home/coldchain

# 8080: `coldchain api` (and `coldchain up`); compose runs `coldchain worker` on 8081.
EXPOSE 8080

ENTRYPOINT ["coldchain"]
CMD ["--help"]
