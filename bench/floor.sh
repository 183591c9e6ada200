#!/usr/bin/env bash
# bench/floor.sh: where a 100 KiB PUT's time goes, server by server. nginx's dav module, the Go
# floor (bench/floor: body to a temporary file and a rename, nothing more), the floor with SHA-256
# and fsync, and attachd's Kazoo route each take `wrk -t2 -c8 -dS` of 100 KiB PUTs on a fresh data
# directory on tmpfs (/dev/shm), the order rotated each round. Per server: requests per second,
# the ratio to nginx's, and the server's CPU time per PUT (user + system, /proc/PID/stat, nginx's
# workers included).
#
#   bench/floor.sh [--rounds R] [--seconds S]
#
# It needs nginx with its dav module and wrk (bench/run.sh installs both). Why: bench/README.md.
set -euo pipefail

die() {
	echo "bench/floor.sh: $*" >&2
	exit 1
}

ROUNDS=2 SECONDS_EACH=8
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=${2:-} && shift 2 ;;
	--seconds) SECONDS_EACH=${2:-} && shift 2 ;;
	*) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2 && exit 2 ;;
	esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $SECONDS_EACH =~ ^[1-9][0-9]*$ ]] || die "--rounds and --seconds take a positive number"
command -v wrk >/dev/null || die "no wrk: run bench/run.sh once, or apt-get install wrk"
nginx -V 2>&1 | grep -q -- --with-http_dav_module || die "no nginx with its dav module: run bench/run.sh once"

BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH")
WORK=$(mktemp -d /tmp/attachd-floor.XXXXXX)
DATA=$(mktemp -d /dev/shm/attachd-floor.XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$WORK" "$DATA"
}
trap cleanup EXIT
. "$BENCH/lib.sh" # build_attachd, free_port, http_code

build_attachd "$REPO" "$WORK/attachd" || die "attachd did not build"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$WORK/floor" ./bench/floor) || die "floor did not build"
TCK=$(getconf CLK_TCK)

SERVERS=(nginx floor floor-sha-fsync attachd)
declare -A RPS=() CPU=()

# start NAME: starts the server on a fresh data directory; sets PID and URL.
start() {
	rm -rf "${DATA:?}"/* && mkdir -p "$DATA/d" "$DATA/tmp"
	free_port
	URL=http://127.0.0.1:$FREE_PORT/m/
	case $1 in
	nginx)
		cat >"$WORK/nginx.conf" <<EOF
user root;
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_max_body_size 0;
    client_body_temp_path $DATA/tmp;
    server {
        listen 127.0.0.1:$FREE_PORT;
        root $DATA/d;
        location / { dav_methods PUT; create_full_put_path on; }
    }
}
EOF
		nginx -p "$WORK/" -e "$WORK/error.log" -c "$WORK/nginx.conf" -g 'daemon off;' >"$WORK/server.log" 2>&1 &
		;;
	floor) "$WORK/floor" -listen "127.0.0.1:$FREE_PORT" -dir "$DATA/d" >"$WORK/server.log" 2>&1 & ;;
	floor-sha-fsync) "$WORK/floor" -sha -fsync -listen "127.0.0.1:$FREE_PORT" -dir "$DATA/d" >"$WORK/server.log" 2>&1 & ;;
	attachd) "$WORK/attachd" serve --listen "127.0.0.1:$FREE_PORT" --data-dir "$DATA/d" >"$WORK/server.log" 2>&1 & ;;
	esac
	PID=$!
	for _ in $(seq 100); do
		[ "$(http_code -X PUT --data-binary x "${URL}probe")" = 201 ] && return
		sleep 0.1
	done
	die "$1 did not answer a PUT: $(tail -3 "$WORK/server.log")"
}

cpu_ticks() { # the server's user and system ticks, its children (nginx's workers) included
	local u=0 s=0 p a b
	for p in $PID $(pgrep -P "$PID" || true); do
		read -r a b < <(awk '{print $14, $15}' "/proc/$p/stat")
		u=$((u + a)) s=$((s + b))
	done
	echo "$u $s"
}

# one NAME: one measurement; appends "req/s user_µs sys_µs" to RPS and CPU.
one() {
	local u0 s0 u1 s1 out n rps
	start "$1"
	read -r u0 s0 < <(cpu_ticks)
	out=$(wrk -t2 -c8 -d"${SECONDS_EACH}s" -s "$BENCH/wrk.lua" "$URL" -- put 102400)
	read -r u1 s1 < <(cpu_ticks)
	kill "$PID" && wait "$PID" 2>/dev/null || true
	PID=
	! grep -q 'Non-2xx\|Socket errors' <<<"$out" || die "$1 answered errors: $out"
	n=$(awk '/requests in/{print $1}' <<<"$out")
	rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
	RPS[$1]+="$rps "
	CPU[$1]+="$(((u1 - u0) * 1000000 / TCK / n)),$(((s1 - s0) * 1000000 / TCK / n)) "
	echo "round $r: $1 $rps req/s" >&2
}

for r in $(seq "$ROUNDS"); do
	k=$(((r - 1) % ${#SERVERS[@]}))
	order=("${SERVERS[@]:k}" "${SERVERS[@]:0:k}")
	for s in "${order[@]}"; do one "$s"; done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END{print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
ng=$(median <<<"${RPS[nginx]}")
echo "| server | req/s, median (all rounds) | vs nginx | CPU µs per PUT, user + system (median) |"
echo "|---|---|---|---|"
for s in "${SERVERS[@]}"; do
	m=$(median <<<"${RPS[$s]}")
	u=$(tr ' ' '\n' <<<"${CPU[$s]}" | cut -d, -f1 | median)
	y=$(tr ' ' '\n' <<<"${CPU[$s]}" | cut -d, -f2 | median)
	printf '| %s | %.0f (%s) | %.2f× | %s + %s |\n' "$s" "$m" "$(sed 's/ $//; s/ /, /g' <<<"${RPS[$s]}")" \
		"$(awk -v a="$m" -v b="$ng" 'BEGIN{print a / b}')" "$u" "$y"
done
