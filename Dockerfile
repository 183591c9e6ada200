# syntax=docker/dockerfile:1
# attachd's container image: a static binary and its plugins on distroless,
# run as a non-root user, data in a volume (docs/operations.md, Packaging).
#
#   docker build --build-arg VERSION=$(git describe --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) -t attachd .
#
# Base images are pinned by tag; a release build pins them by digest too
# (FROM image:tag@sha256:…).

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG COMMIT=
# Static (CGO_ENABLED=0): the runtime image has no C library. The plugins are
# built as plugins/build.sh builds them, and the configuration pins each one.
# grpcnotrace: gRPC without golang.org/x/net/trace, which attachd never uses.
RUN CGO_ENABLED=0 go build -tags grpcnotrace -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/attachd . \
 && plugins/build.sh /out/plugins \
 && rm /out/plugins/attachd-plugin-example \
 && packaging/config.sh 0.0.0.0:37635 /usr/lib/attachd/plugins /out/plugins > /out/attachd.toml \
 && mkdir /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/attachd /usr/bin/attachd
COPY --from=build /out/plugins/ /usr/lib/attachd/plugins/
# Readable by attachd's group only: it will hold [[users]] and plugin secrets.
COPY --from=build --chown=0:65532 --chmod=0640 /out/attachd.toml /etc/attachd/attachd.toml
COPY --from=build --chown=65532:65532 --chmod=0750 /out/data /var/lib/attachd
USER 65532:65532
VOLUME ["/var/lib/attachd"]
EXPOSE 37635
# The image has no curl: attachd asks its own /readyz.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["/usr/bin/attachd", "healthcheck", "--url", "http://127.0.0.1:37635/readyz", "--timeout", "5s"]
ENTRYPOINT ["/usr/bin/attachd"]
CMD ["serve", "--config", "/etc/attachd/attachd.toml"]
