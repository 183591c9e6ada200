#!/usr/bin/env bash
# bench/cpu.sh: the server's CPU time per 100 KiB PUT, attachd at two revisions side by side.
#
# Requests per second on a machine the load generator shares swing by ±5 % from run to run; the
# CPU time the server spends per request does not, so a change of a few per cent shows here
# first. Each revision is built from a git worktree; in each round each build starts on a fresh
# data directory on tmpfs (/dev/shm), takes 3 000 PUTs to warm up, then N more from
# bench/loader (8 connections), and the server's user + system time (/proc/PID/stat) over
# those N is divided by N. Each round runs both builds, in turn first.
#
#   bench/cpu.sh [--route dav|kazoo] [-n N] [--rounds R] REV_A REV_B
set -euo pipefail

usage() {
	sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}
die() {
	echo "bench/cpu.sh: $*" >&2
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null
	exit 1
}

ROUTE=dav N=10000 ROUNDS=3 REVS=()
while [ $# -gt 0 ]; do
	case $1 in
	--route) ROUTE=${2:-} && shift 2 ;;
	-n) N=${2:-} && shift 2 ;;
	--rounds) ROUNDS=${2:-} && shift 2 ;;
	-h | --help) usage ;;
	-*) die "unknown option $1" ;;
	*) REVS+=("$1") && shift ;;
	esac
done
[ ${#REVS[@]} = 2 ] || usage
case $ROUTE in dav | kazoo) ;; *) die "--route: dav or kazoo, not '$ROUTE'" ;; esac
[[ $N =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "-n and --rounds take a positive number"

BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH")
WORK=$(mktemp -d /tmp/attachd-cpu.XXXXXX)
DATA=$(mktemp -d /dev/shm/attachd-cpu.XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$WORK" "$DATA"
	git -C "$REPO" worktree prune
}
trap cleanup EXIT
declare -A USED_PORTS=()
. "$BENCH/lib.sh" # build_attachd, free_port

for i in 0 1; do
	git -C "$REPO" worktree add -q --detach "$WORK/src" "${REVS[$i]}" || die "no revision ${REVS[$i]}"
	build_attachd "$WORK/src" "$WORK/attachd-$i" || die "build of ${REVS[$i]} failed"
	git -C "$REPO" worktree remove --force "$WORK/src"
done
(cd "$REPO" && go build -o "$WORK/loader" ./bench/loader)

TCK=$(getconf CLK_TCK)
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# one_round I: CPU µs per PUT of build I, on a fresh data directory.
one_round() {
	local i=$1 base a z
	rm -rf "${DATA:?}"/* && mkdir -p "$DATA/d"
	free_port
	"$WORK/attachd-$i" serve --listen "127.0.0.1:$FREE_PORT" --data-dir "$DATA/d" >"$WORK/server.log" 2>&1 &
	PID=$!
	for _ in $(seq 100); do [ "$(http_code "http://127.0.0.1:$FREE_PORT/healthz")" = 200 ] && break; sleep 0.1; done
	base=http://127.0.0.1:$FREE_PORT/
	if [ "$ROUTE" = dav ]; then
		base=${base}dav/
		curl -sf -X MKCOL -o /dev/null "${base}warm/" && curl -sf -X MKCOL -o /dev/null "${base}m/" || die "MKCOL refused"
	fi
	"$WORK/loader" -url "${base}warm/" -n 3000 -size 102400 -c 8 >/dev/null || die "warm-up PUTs failed"
	a=$(cpu_of "$PID")
	"$WORK/loader" -url "${base}m/" -n "$N" -size 102400 -c 8 >/dev/null || die "PUTs failed"
	z=$(cpu_of "$PID")
	kill "$PID" && wait "$PID" 2>/dev/null || true
	PID=
	echo $(((z - a) * 1000000 / TCK / N))
}

echo "| round | ${REVS[0]} µs/PUT | ${REVS[1]} µs/PUT | ratio |"
echo "|---|---|---|---|"
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then
		x=$(one_round 0) && y=$(one_round 1)
	else
		y=$(one_round 1) && x=$(one_round 0)
	fi
	[ -n "$x" ] && [ -n "$y" ] || exit 1
	echo "| $r | $x | $y | $(awk -v x="$x" -v y="$y" 'BEGIN{printf "%.3f", y / x}') |"
done
