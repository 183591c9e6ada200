#!/usr/bin/env bash
# bench/growth.sh [PREFILL]: does a store slow down as it grows? Runs
# BenchmarkPutGrowth, BenchmarkOverwriteGrowth and BenchmarkQuotaGrowth
# (server/store/growth_test.go): 100 KiB stores, 8 at a time, alternately into
# an empty store and into a folder that already holds PREFILL objects (default
# 1 000 000; index rows and sidecars made directly, not by stores), on a tmpfs;
# new keys in the first, in the second replacing one of 64 objects each time,
# in the third new keys under a quota on the folder. full/empty-% is the full
# store's rate as a percentage of the empty one's (target: at least 90). The
# data goes to a folder under /dev/shm (removed on exit); ATTACHD_BENCH_DIR
# overrides it.
set -euo pipefail
cd "$(dirname "$0")/.."
prefill=${1:-1000000}
dir=${ATTACHD_BENCH_DIR:-}
if [ -z "$dir" ]; then
	dir=$(mktemp -d /dev/shm/attachd-growth.XXXXXX)
	trap 'rm -rf "$dir"' EXIT
fi
ATTACHD_BENCH_DIR=$dir ATTACHD_BENCH_PREFILL=$prefill \
	go test -run '^$' -bench '^Benchmark(Put|Overwrite|Quota)Growth$' -benchtime 12000x -count 1 -timeout 2h ./server/store/
