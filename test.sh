#!/usr/bin/env bash
# test.sh — attachd's one test command (README, .ci/run).
#
# Installs what the tests need when it is missing (Debian packages, Azurite
# from npm, Go modules), starts a throwaway OpenSSH sshd, Azurite and
# PostgreSQL on loopback, then runs gofmt, go vet, go test -race over every
# package — the end-to-end suites among them drive the built binary and the
# real plugin binaries with litmus, rclone, davfs2 and cadaver —, builds the
# Debian package, installs, checks and purges it, and runs each fuzz target
# briefly. It stops what it started, by PID.
#
#   ./test.sh             everything
#   FUZZTIME=200000x ./test.sh    more fuzzing (a count of inputs per target)
set -euo pipefail
cd "$(dirname "$0")"

# A count, not a duration: Go 1.26's fuzz coordinator can fail a target with
# a bare "context deadline exceeded", no input written, when a -fuzztime
# duration runs out mid-call (go.dev/issue/75804, fixed in Go 1.27). A count
# has no deadline. 50 000 inputs take 2–13 s a target on two cores.
fuzztime=${FUZZTIME:-50000x}

say() { printf '\n== %s\n' "$*"; }

# Debian packages the tests use. Hand installs don't survive onto a fresh
# machine, so install here. zsh and fish run the completion scripts; man-db
# and systemd (for systemd-analyze) check the Debian package; chromium runs
# the voicemail browser's end-to-end test (server/e2e/ui_test.go).
pkgs=(litmus cadaver rclone davfs2 fuse3 openssh-server curl zsh fish man-db systemd chromium)
missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "test.sh: need root to install: ${missing[*]} (or: sudo apt-get install ${missing[*]})" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "test.sh: Go 1.26 is needed on PATH" >&2; exit 1; }
command -v npm >/dev/null || { echo "test.sh: npm (Node.js 20) is needed for Azurite" >&2; exit 1; }

say "go mod download"
go mod download

work=$(mktemp -d /tmp/attachd-test.XXXXXX)
cleanup() {
	.ci/postgres.sh stop "$work/postgres" >/dev/null 2>&1 || true
	.ci/minio.sh stop "$work/minio" >/dev/null 2>&1 || true
	.ci/azurite.sh stop "$work/azurite" >/dev/null 2>&1 || true
	.ci/sshd.sh stop "$work/sshd" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

say "starting sshd, Azurite and PostgreSQL on loopback"
.ci/sshd.sh start "$work/sshd"
. "$work/sshd/env"
.ci/azurite.sh start "$work/azurite"
. "$work/azurite/env"
.ci/postgres.sh start "$work/postgres"
. "$work/postgres/env"
.ci/minio.sh start "$work/minio"
. "$work/minio/env"

say "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.ci/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" $unformatted >&2
	exit 1
fi

say "go vet"
go vet ./...

# The Linux-only calls (syncfs, boot id, openat2) have fallbacks for other
# systems; FreeBSD's types differ from Linux's, so build them there too.
say "go build for FreeBSD"
GOOS=freebsd go build ./...

say "go test -race"
go test -race -count=1 -timeout 20m ./...

# The Kazoo suite and litmus again, with the bytes in each storage plugin.
for backend in sftp azblob s3; do
	say "Kazoo suite and litmus with the $backend backend"
	ATTACHD_E2E_BACKEND=$backend go test -count=1 -timeout 10m \
		-run 'TestScenarios|TestShapesOnOneServer|TestVectors|TestBase64Modes|TestShortBody|TestOverwriteIsAtomic|TestHead|TestDAVLitmus|TestDAVKazooInterop' \
		./server/e2e/
done

# The same against a cluster: three nodes over one PostgreSQL index and one
# S3 bucket, each request to the next node (docs/cluster.md).
for mode in through spool; do
	say "Kazoo suite and litmus against three nodes, $mode mode, PostgreSQL and S3"
	ATTACHD_E2E_NODES=3 ATTACHD_E2E_BACKEND=s3 ATTACHD_E2E_WRITE_MODE=$mode go test -count=1 -timeout 10m \
		-run 'TestScenarios|TestShapesOnOneServer|TestVectors|TestBase64Modes|TestOverwriteIsAtomic|TestHead|TestDAVLitmus|TestDAVKazooInterop' \
		./server/e2e/
done

# The Debian package, installed on this machine and purged again
# (packaging/test-deb.sh); it leaves nothing behind.
say "Debian package: build, install, check, purge"
if [ "$(id -u)" -ne 0 ]; then
	echo "test.sh: SKIPPING the Debian package test: installing it needs root" >&2
else
	deb=$(packaging/build-deb.sh "$work/dist")
	packaging/test-deb.sh "$deb"
fi

say "fuzzing, -fuzztime=$fuzztime per target"
# A failure prints the whole report and the failing input the fuzzer wrote
# under testdata/fuzz: on a fresh CI machine that file dies with the machine.
fuzz() {
	local out f
	if out=$(go test -run='^$' -fuzz="^$2\$" -fuzztime="$fuzztime" "$1" 2>&1); then
		printf '%s\n' "$out" | tail -n 2
		return
	fi
	printf '%s\n' "$out" | grep -v '^fuzz: elapsed' | tail -n 60
	git ls-files --others --exclude-standard -- "$1/testdata/fuzz/$2" | while read -r f; do
		printf '== failing input %s:\n' "$f"
		cat "$f"
	done
	return 1
}
fuzz ./server/kazoo FuzzMultipart
fuzz ./server/kazoo FuzzQuery
fuzz ./server/kazoo FuzzBase64
fuzz ./server/store FuzzCanonicalPath
fuzz ./server/forwarded FuzzClient
fuzz ./server/dav FuzzPropfindBody
fuzz ./server/dav FuzzProppatchBody
fuzz ./server/dav FuzzLockBody

say "all tests passed"
