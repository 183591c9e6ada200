#!/bin/sh
# Builds the Debian package of attachd into OUTDIR (default dist/) and prints
# its path: the binary, the plugins, a configuration pinning them, the systemd
# unit, the man page and the shell completions (packaging/nfpm.yaml).
#
#   packaging/build-deb.sh [OUTDIR]
#
# VERSION overrides the package version (default: from git describe). nfpm is
# built once from the Go module proxy, at the version pinned below, and kept
# in /var/cache/attachd-ci (or ~/.cache/attachd when that is not writable).
set -eu
out=${1:-dist}
cd "$(dirname "$0")/.."
root=$(pwd)

nfpm_version=v2.45.2
cache=/var/cache/attachd-ci
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/attachd
fi
nfpm=$cache/nfpm-$nfpm_version/nfpm
if [ ! -x "$nfpm" ]; then
	echo "building nfpm $nfpm_version into $cache" >&2
	GOBIN=$cache/nfpm-$nfpm_version CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
		go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$nfpm_version"
fi

# Debian versions start with a digit: v1.2.3 → 1.2.3; an untagged tree is
# 0.0.0+git<date>.<commit>, which sorts by date.
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if ! git diff --quiet HEAD 2>/dev/null; then
	commit=$commit-dirty
fi
if [ -z "${VERSION:-}" ]; then
	if tag=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
		VERSION=${tag#v}
	else
		VERSION=0.0.0+git$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S).$(git rev-parse --short=12 HEAD)
	fi
fi
case $(go env GOARCH) in
amd64 | arm64 | riscv64 | ppc64le | s390x) ARCH=$(go env GOARCH) ;;
386) ARCH=i386 ;;
arm) ARCH=armhf ;;
*) echo "build-deb.sh: no Debian name for GOARCH $(go env GOARCH)" >&2; exit 1 ;;
esac
# The files' dates in the package are the commit's: the same tree builds the
# same package.
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
export VERSION ARCH SOURCE_DATE_EPOCH

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/attachd-deb.XXXXXX")
export STAGE
trap 'rm -rf "$STAGE"' EXIT
# grpcnotrace: gRPC (the plugins' transport) without golang.org/x/net/trace,
# which attachd never turns on: less binary mapped at rest (bench/README.md).
CGO_ENABLED=0 go build -tags grpcnotrace -trimpath -buildvcs=false \
	-ldflags "-s -w -X main.version=$VERSION -X main.commit=$commit" -o "$STAGE/attachd" .
plugins/build.sh "$STAGE/plugins" >/dev/null
rm -f "$STAGE/plugins/attachd-plugin-example" # a demo that keeps blobs in memory
packaging/config.sh 127.0.0.1:37635 /usr/lib/attachd/plugins "$STAGE/plugins" >"$STAGE/attachd.toml"
"$STAGE/attachd" man | gzip -9n >"$STAGE/attachd.8.gz"
for shell in bash zsh fish; do
	"$STAGE/attachd" completion $shell >"$STAGE/completion.$shell"
done

mkdir -p "$out"
deb=$out/attachd_${VERSION}_$ARCH.deb
"$nfpm" package --config packaging/nfpm.yaml --packager deb --target "$deb" >&2
echo "$deb"
