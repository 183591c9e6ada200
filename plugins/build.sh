#!/bin/sh
# Builds every plugin under plugins/ (each folder with a main.go) into DIR as
# attachd-plugin-<name>, static and reproducible, and prints each file's
# SHA-256 for its [plugin.<name>] sha256 pin.
#
#   plugins/build.sh DIR
set -eu
out=${1:?usage: plugins/build.sh DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
# The version the plugins report (attachd plugins list); -X is ignored by
# plugins without a main.version variable.
version=$(git describe --always --dirty 2>/dev/null || echo dev)
for d in plugins/*/; do
	name=$(basename "$d")
	[ -f "$d/main.go" ] || continue
	CGO_ENABLED=0 go build -tags grpcnotrace -trimpath -ldflags "-X main.version=$version" -o "$out/attachd-plugin-$name" "./plugins/$name"
	sha256sum "$out/attachd-plugin-$name"
done
