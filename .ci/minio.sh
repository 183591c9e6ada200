#!/usr/bin/env bash
# A throwaway MinIO (S3-compatible server) on free loopback ports, for the
# s3 plugin tests.
#
#   .ci/minio.sh start DIR   builds MinIO if needed; data, log and env in DIR
#   .ci/minio.sh stop DIR    stops the MinIO started in DIR, by its PID
#
# `. DIR/env` exports ATTACHD_TEST_S3_ENDPOINT (http://127.0.0.1:PORT),
# ATTACHD_TEST_S3_ACCESS_KEY and ATTACHD_TEST_S3_SECRET_KEY (random root
# credentials for this run).
#
# MinIO is built from source at a pinned version with `go install` (about
# 2 minutes the first time) into $MINIO_CACHE (default
# /var/cache/attachd-ci/minio-bin), outside the repository; later runs
# reuse the binary.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1 dir=$2

minio_version=v0.0.0-20260212201848-7aac2a2c5b7c
cache=${MINIO_CACHE:-/var/cache/attachd-ci/minio-bin}

case $cmd in
start)
	mkdir -p "$dir/data"
	dir=$(cd "$dir" && pwd)
	if [ -f "$dir/minio.pid" ] && kill -0 "$(cat "$dir/minio.pid")" 2>/dev/null; then
		echo "MinIO already running in $dir (pid $(cat "$dir/minio.pid"))" >&2
		exit 1
	fi
	if [ ! -x "$cache/minio" ]; then
		echo "building MinIO $minio_version into $cache (once; takes a few minutes)" >&2
		mkdir -p "$cache"
		# Outside the repository, so attachd's go.mod is not consulted.
		(cd / && GOBIN="$cache" go install "github.com/minio/minio@$minio_version")
	fi
	port=$(free_port)
	console=$(free_port)
	while [ "$console" = "$port" ]; do console=$(free_port); done
	user=attachd-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
	pass=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
	# No update checks, no usage reports, no browser console worth serving.
	MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$pass MINIO_BROWSER=off \
		MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
		"$cache/minio" server "$dir/data" --quiet \
		--address "127.0.0.1:$port" --console-address "127.0.0.1:$console" \
		</dev/null >"$dir/minio.log" 2>&1 &
	echo $! >"$dir/minio.pid"
	for _ in $(seq 300); do
		if curl -fsS -o /dev/null "http://127.0.0.1:$port/minio/health/live" 2>/dev/null; then
			umask 077
			cat >"$dir/env" <<-ENV
				export ATTACHD_TEST_S3_ENDPOINT=http://127.0.0.1:$port
				export ATTACHD_TEST_S3_ACCESS_KEY=$user
				export ATTACHD_TEST_S3_SECRET_KEY=$pass
			ENV
			echo "MinIO listening on 127.0.0.1:$port (pid $(cat "$dir/minio.pid")); . $dir/env"
			exit 0
		fi
		if ! kill -0 "$(cat "$dir/minio.pid")" 2>/dev/null; then break; fi
		sleep 0.1
	done
	echo "MinIO did not start; its log:" >&2
	cat "$dir/minio.log" >&2
	exit 1
	;;
stop)
	stop_pid MinIO "$dir" minio TERM 100
	;;
*) usage ;;
esac
