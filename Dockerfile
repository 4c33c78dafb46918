# RecoveryDesk in a container: docker build -t recoverydesk . && see README "Docker".
#
# Build stage: the Go toolchain on Debian bookworm, the same Debian as the runtime stage, so that
# the cgo binary (mattn/go-sqlite3) links against the glibc it will run with. The golang Debian
# images ship gcc and libc6-dev, which cgo needs. (golang:1.26 without a suffix is Debian trixie,
# whose newer glibc the bookworm runtime lacks.)
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first: this layer is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags='-s -w' -o /out/recoverydesk ./cmd/recoverydesk

# Runtime stage: glibc (cgo) and CA certificates (SMTP over TLS, the Telegram Bot API, the host
# webhook), nothing else. No curl, hence no HEALTHCHECK: the image has nothing to run one with, and
# orchestrators probe GET /healthz (process up) and GET /readyz (database answers) themselves.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir /data /backups \
    && chown 65532:65532 /data /backups \
    && chmod 0700 /data /backups
COPY --from=build /out/recoverydesk /usr/local/bin/recoverydesk
# /data holds the SQLite database and, unless RECOVERYDESK_KEYS and RECOVERYDESK_AUDIT_KEY are
# given, the key files created beside it on the first start (mode 0600). Mount a volume there and
# back the key files up apart from the database backups. /backups is where 'recoverydesk backup'
# can write inside the container; mount a volume of its own there (a named volume starts owned by
# the service's user, as the directory is here).
WORKDIR /data
VOLUME /data
ENV RECOVERYDESK_ADDR=0.0.0.0:8080 \
    RECOVERYDESK_DB=/data/recoverydesk.db
# Set RECOVERYDESK_BASE_URL to the public https:// URL: links in notices start with it.
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/recoverydesk"]
CMD ["serve"]
