#!/usr/bin/env bash
# bench/run.sh: one interleaved benchmark run of attachd beside nginx's WebDAV modules
# (ngx_http_dav_module + dav-ext) and Apache mod_dav (mod_dav_fs, event MPM), reproducing the
# method the anchors were measured with (bench/README.md).
# What it measures and how to read the table: bench/README.md.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: bench/run.sh [--tmpfs] [--rounds N] [--only put,get,davput,davget,big,propfind]
                    [--servers nginx,apache,attachd] [--config FILE] [--wait-quiet S] [--rev REV]

  --tmpfs            data dirs and the 1 GiB file on a tmpfs mounted under $WORK/tmpfs
  --rounds N         interleaved rounds, server order rotated each round (default 3)
  --only LIST        steps to run, comma-separated (default put,get,davput,davget,big,propfind);
                     put/get use attachd's Kazoo route, davput/davget its /dav/ (nginx and
                     Apache serve both from their WebDAV root)
  --servers LIST     servers to run, comma-separated (default nginx,apache,attachd)
  --config FILE      passed to `attachd serve --config FILE` (e.g. for users/auth)
  --wait-quiet S     before each measurement, wait up to S s (default 0) while other
                     processes keep more than 15 % of the CPUs busy (shared machines)
  --rev REV          build attachd from git revision REV (git archive into $WORK/src)
                     instead of the work tree, e.g. while others are mid-edit

Work dir: $ATTACHD_BENCH_WORK (default /tmp/attachd-bench); raw outputs in $WORK/raw/<stamp>/;
the table is printed and written to bench/results/<date>[-tmpfs].md.  Run as root.
EOF
}

die() { echo "run.sh: $*" >&2; exit 1; }

ROUNDS=3
TMPFS=0
ONLY=put,get,davput,davget,big,propfind
SERVER_LIST=nginx,apache,attachd
ATTACHD_CONFIG=
WAIT_QUIET=0
ATTACHD_REV=
while [ $# -gt 0 ]; do
	case $1 in
	--tmpfs) TMPFS=1 ;;
	--rounds) [ $# -ge 2 ] || die "--rounds needs a number"; ROUNDS=$2; shift ;;
	--rounds=*) ROUNDS=${1#*=} ;;
	--only) [ $# -ge 2 ] || die "--only needs a list"; ONLY=$2; shift ;;
	--only=*) ONLY=${1#*=} ;;
	--servers) [ $# -ge 2 ] || die "--servers needs a list"; SERVER_LIST=$2; shift ;;
	--servers=*) SERVER_LIST=${1#*=} ;;
	--wait-quiet) [ $# -ge 2 ] || die "--wait-quiet needs seconds"; WAIT_QUIET=$2; shift ;;
	--wait-quiet=*) WAIT_QUIET=${1#*=} ;;
	--rev) [ $# -ge 2 ] || die "--rev needs a git revision"; ATTACHD_REV=$2; shift ;;
	--rev=*) ATTACHD_REV=${1#*=} ;;
	--config) [ $# -ge 2 ] || die "--config needs a file"; ATTACHD_CONFIG=$2; shift ;;
	--config=*) ATTACHD_CONFIG=${1#*=} ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
	shift
done

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, got '$ROUNDS'"
[[ $WAIT_QUIET =~ ^[0-9]+$ ]] || die "--wait-quiet must be a number of seconds, got '$WAIT_QUIET'"
declare -A WANT=()
IFS=, read -ra only_items <<<"$ONLY"
for s in "${only_items[@]}"; do
	case $s in put | get | davput | davget | big | propfind) WANT[$s]=1 ;; *) die "--only: unknown step '$s' (put,get,davput,davget,big,propfind)" ;; esac
done
STEPS=()
for s in put get davput davget big propfind; do [ -n "${WANT[$s]:-}" ] && STEPS+=("$s"); done
[ ${#STEPS[@]} -gt 0 ] || die "--only: no steps"
SERVERS=()
has_server() { [[ " ${SERVERS[*]} " == *" $1 "* ]]; }
IFS=, read -ra server_items <<<"$SERVER_LIST"
for s in "${server_items[@]}"; do
	case $s in nginx | apache | attachd) has_server "$s" || SERVERS+=("$s") ;; *) die "--servers: unknown server '$s' (nginx,apache,attachd)" ;; esac
done
[ ${#SERVERS[@]} -gt 0 ] || die "--servers: no servers"
[ -z "$ATTACHD_CONFIG" ] || ATTACHD_CONFIG=$(realpath "$ATTACHD_CONFIG")
[ "$(id -u)" = 0 ] || die "run as root: it mounts a tmpfs, writes /proc/PID/clear_refs and may apt-get install"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BENCH=$REPO/bench
WORK=${ATTACHD_BENCH_WORK:-/tmp/attachd-bench}
STAMP=$(date +%Y%m%d-%H%M%S)
SUFFIX=
[ "$TMPFS" = 1 ] && SUFFIX=-tmpfs
RAW=$WORK/raw/$STAMP$SUFFIX
RESULTS=$BENCH/results/$(date +%F)$SUFFIX.md
# A second run on the same day gets the time in its name instead of overwriting the first table.
[ -e "$RESULTS" ] && RESULTS=$BENCH/results/$(date +%F-%H%M%S)$SUFFIX.md
TSV=$RAW/results.tsv
BIG_SIZE=1073741824 # 1 GiB
PUT_SIZE=102400     # 100 KiB
PROPFIND_N=10000
WRK_FLAGS=(-t2 -c8 -d10s --timeout 30s --latency)
APACHE_MODS=/usr/lib/apache2/modules
APACHE_USER=www-data # the anchors ran Apache's workers as www-data (Apache refuses to run them as root)

mkdir -p "$RAW"
: >"$TSV"
. "$BENCH/lib.sh" # log, rec, apt_install, free_port, http_code, pause, measure_*, parse_wrk
meta() { printf '%s\t%s\n' "$1" "$2" >>"$RAW/meta.tsv"; }

# --- cleanup: stop exactly what this script started, by PID ------------------------------------

STARTED_PIDS=()
MOUNTED=
TMPFS_DIR=$WORK/tmpfs
BIG=
DATA_ROOT=
cleanup() {
	local rc=$? pid i c0=$SECONDS
	set +e
	trap - EXIT INT TERM
	for pid in "${STARTED_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${STARTED_PIDS[@]}"; do
		for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && { log "pid $pid ignored SIGTERM for 10 s: SIGKILL"; kill -KILL "$pid"; }
		wait "$pid" 2>/dev/null
	done
	[ -n "$BIG" ] && rm -f "$BIG"
	if [ -n "$MOUNTED" ]; then
		for i in 1 2 3 4 5; do umount "$TMPFS_DIR" 2>/dev/null && break; sleep 1; done
		mountpoint -q "$TMPFS_DIR" && log "could not umount $TMPFS_DIR"
	elif [ -n "$DATA_ROOT" ]; then
		rm -rf "$DATA_ROOT"
	fi
	[ $((SECONDS - c0)) -gt 5 ] && log "clean-up (stop servers, delete data) took $((SECONDS - c0)) s"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools --------------------------------------------------------------------------------------

install_missing() {
	local need=() p
	command -v nginx >/dev/null || need+=(nginx)
	ls /usr/lib/nginx/modules/ngx_http_dav_ext_module.so >/dev/null 2>&1 || need+=(libnginx-mod-http-dav-ext)
	if has_server apache; then
		command -v apache2 >/dev/null && [ -f "$APACHE_MODS/mod_dav_fs.so" ] || need+=(apache2)
	fi
	for p in wrk hyperfine curl; do command -v "$p" >/dev/null || need+=("$p"); done
	apt_install "${need[@]}"
}


# --- servers ------------------------------------------------------------------------------------

declare -A PORT=() PID=() BASE=() DATA=()

# store_url/dav_url SERVER PATH: where a plain PUT/GET goes (attachd: the Kazoo route), and
# where WebDAV methods go (attachd: under /dav/).  nginx and Apache serve both from their root.
store_url() { echo "${BASE[$1]}/$2"; }
dav_url() { if [ "$1" = attachd ]; then echo "${BASE[$1]}/dav/$2"; else echo "${BASE[$1]}/$2"; fi; }
# step_url STEP SERVER PATH: put/get go to store_url (attachd's Kazoo route), davput/davget to
# dav_url (attachd's /dav/); for nginx and Apache both are their WebDAV root.
step_url() { case $1 in put | get) store_url "$2" "$3" ;; *) dav_url "$2" "$3" ;; esac; }
# kazoo_route STEP SERVER: true when the step's PUTs go to attachd's Kazoo route, which needs no
# collection; every WebDAV PUT (nginx, Apache, attachd's /dav/) gets an MKCOL first.
kazoo_route() { [ "$2" = attachd ] && { [ "$1" = put ] || [ "$1" = get ]; }; }
# can_delete SERVER: whether the benchmark's data can be DELETEd between runs (attachd: probed).
can_delete() { [ "$1" != attachd ] || [ "$ATTACHD_DELETE" = 1 ]; }

server_pids() { # the server process and its children (nginx/Apache workers, attachd plugins)
	echo "${PID[$1]}"
	pgrep -P "${PID[$1]}" || true
}
measured_pids() { server_pids "$@"; } # for bench/lib.sh's measure_begin and measure_end

wait_ready() { # SERVER URL WANT_CODE
	local s=$1 url=$2 want=$3 code i
	for i in $(seq 300); do
		kill -0 "${PID[$s]}" 2>/dev/null || die "$s exited during start-up, see $RAW/$s.log"
		code=$(http_code --max-time 2 "$url")
		if [ "$want" = any ] && [ "$code" != 000 ]; then return; fi
		[ "$code" = "$want" ] && return
		sleep 0.1
	done
	die "$s not ready after 30 s ($url answered $code)"
}

start_nginx() {
	local run=$WORK/run/nginx data=$DATA_ROOT/nginx-data mods=() m
	rm -rf "$run"
	mkdir -p "$run" "$data" "$data.nginx-body-tmp"
	for m in /usr/lib/nginx/modules/ngx_http_dav_module.so /usr/lib/nginx/modules/ngx_http_dav_ext_module.so; do
		[ -f "$m" ] && mods+=("load_module $m;")
	done
	[[ "${mods[*]}" == *dav_ext* ]] || die "ngx_http_dav_ext_module.so not found under /usr/lib/nginx/modules"
	nginx -V 2>&1 | grep -q -- --with-http_dav_module || [[ "${mods[*]}" == *ngx_http_dav_module* ]] ||
		die "nginx has no http_dav_module (neither built in nor as a .so)"
	free_port
	PORT[nginx]=$FREE_PORT
	DATA[nginx]=$data
	cat >"$run/nginx.conf" <<EOF
# Written by bench/run.sh: nginx dav + dav-ext as configured for the anchors (anchors-measured.md).
$(printf '%s\n' "${mods[@]}")
user root;
worker_processes auto;
pid $run/nginx.pid;
error_log $run/error.log;
events { worker_connections 1024; }
http {
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    client_max_body_size 0;
    client_body_temp_path $data.nginx-body-tmp;
    proxy_temp_path $run/proxy_temp;
    fastcgi_temp_path $run/fastcgi_temp;
    uwsgi_temp_path $run/uwsgi_temp;
    scgi_temp_path $run/scgi_temp;
    dav_ext_lock_zone zone=davlock:10m;
    server {
        listen 127.0.0.1:${PORT[nginx]};
        root $data;
        location / {
            dav_methods PUT DELETE MKCOL COPY MOVE;
            dav_ext_methods PROPFIND OPTIONS LOCK UNLOCK;
            dav_ext_lock zone=davlock;
            create_full_put_path on;
        }
    }
}
EOF
	cp "$run/nginx.conf" "$RAW/nginx.conf"
	nginx -t -p "$run/" -e "$run/error.log" -c "$run/nginx.conf" >"$RAW/nginx-t.log" 2>&1 ||
		die "nginx -t failed: $(cat "$RAW/nginx-t.log")"
	nginx -p "$run/" -e "$run/error.log" -c "$run/nginx.conf" -g 'daemon off;' >"$RAW/nginx.log" 2>&1 &
	PID[nginx]=$!
	STARTED_PIDS+=("$!")
	BASE[nginx]=http://127.0.0.1:${PORT[nginx]}
	wait_ready nginx "${BASE[nginx]}/" any
	log "nginx pid ${PID[nginx]} on ${BASE[nginx]}, workers: $(pgrep -P "${PID[nginx]}" | tr '\n' ' ')"
}

# Apache 2.4 from Debian (apache2, event MPM) with mod_dav + mod_dav_fs + mod_dav_lock, configured
# as for the anchors: Debian's apache2.conf and module set (mods-enabled as the package ships it)
# with its envvars, but its own config, pid, lock and runtime dirs under $WORK/run/apache, its own
# loopback port and data dir, no sites, no conf-enabled (so no access log), LimitRequestBody 0,
# Dav On, DavLockDB RUN/lock/DavLock.  Runs in the foreground (-DFOREGROUND), stopped by its PID;
# the workers run as www-data (Apache will not run them as root), so the data dir is theirs.
APACHE_DEFAULT_MODS="access_compat alias auth_basic authn_core authn_file authz_core authz_host authz_user autoindex deflate dir env filter mime negotiation reqtimeout setenvif status"
APACHE_ENV=()
start_apache() {
	local run=$WORK/run/apache data=$DATA_ROOT/apache-data m inc=() code probe=$RAW/probe-apache.bin
	id "$APACHE_USER" >/dev/null 2>&1 || die "no user $APACHE_USER for Apache's workers"
	rm -rf "$run"
	mkdir -p "$run/lock" "$data"
	chown "$APACHE_USER:$APACHE_USER" "$run/lock" "$data"
	for m in mpm_event $APACHE_DEFAULT_MODS dav dav_fs dav_lock; do
		[ -f "/etc/apache2/mods-available/$m.load" ] || die "/etc/apache2/mods-available/$m.load missing (apache2 package incomplete?)"
		inc+=("Include mods-available/$m.load")
		# dav_fs.conf only sets DAVLockDB, written out below
		[ "$m" != dav_fs ] && [ -f "/etc/apache2/mods-available/$m.conf" ] && inc+=("Include mods-available/$m.conf")
	done
	free_port
	PORT[apache]=$FREE_PORT
	DATA[apache]=$data
	# What Debian's /etc/apache2/envvars sets, pointed at our own dirs (the binary needs them:
	# the config below, like Debian's, refers to them).
	APACHE_ENV=(APACHE_CONFDIR=/etc/apache2 APACHE_RUN_USER="$APACHE_USER" APACHE_RUN_GROUP="$APACHE_USER"
		APACHE_PID_FILE="$run/apache2.pid" APACHE_RUN_DIR="$run" APACHE_LOCK_DIR="$run/lock"
		APACHE_LOG_DIR="$run" LANG=C)
	cat >"$run/apache.conf" <<EOF
# Written by bench/run.sh: Apache mod_dav as configured for the anchors (anchors-measured.md):
# Debian's apache2.conf defaults and module set, event MPM with Debian's mpm_event.conf, no sites,
# no access log.
ServerRoot "/etc/apache2"
ServerName 127.0.0.1
DefaultRuntimeDir \${APACHE_RUN_DIR}
PidFile \${APACHE_PID_FILE}
Timeout 300
KeepAlive On
MaxKeepAliveRequests 100
KeepAliveTimeout 5
User \${APACHE_RUN_USER}
Group \${APACHE_RUN_GROUP}
HostnameLookups Off
ErrorLog $RAW/apache-error.log
LogLevel warn
$(printf '%s
' "${inc[@]}")
DavLockDB \${APACHE_LOCK_DIR}/DavLock
Listen 127.0.0.1:${PORT[apache]}
<Directory />
	Options FollowSymLinks
	AllowOverride None
	Require all denied
</Directory>
AccessFileName .htaccess
<FilesMatch "^\.ht">
	Require all denied
</FilesMatch>
DocumentRoot "$data"
<Directory "$data">
	Options FollowSymLinks
	AllowOverride None
	Require all granted
	Dav On
	LimitRequestBody 0
</Directory>
EOF
	cp "$run/apache.conf" "$RAW/apache.conf"
	env "${APACHE_ENV[@]}" apache2 -f "$run/apache.conf" -t -D DUMP_MODULES >"$RAW/apache-t.log" 2>&1 ||
		die "apache2 -t failed: $(cat "$RAW/apache-t.log")"
	# env execs apache2, so $! is Apache's parent process.
	env "${APACHE_ENV[@]}" apache2 -f "$run/apache.conf" -DFOREGROUND >"$RAW/apache.log" 2>&1 &
	PID[apache]=$!
	STARTED_PIDS+=("$!")
	BASE[apache]=http://127.0.0.1:${PORT[apache]}
	wait_ready apache "${BASE[apache]}/" any
	log "apache pid ${PID[apache]} on ${BASE[apache]}, workers (as $APACHE_USER): $(pgrep -P "${PID[apache]}" | tr '\n' ' ')"
	# The workers must be able to write the data dir: PUT, GET back, DELETE.
	head -c 1024 /dev/urandom >"$probe"
	code=$(http_code -T "$probe" "$(dav_url apache "probe-$STAMP.bin")")
	[ "$code" = 201 ] || die "Apache answered $code to a PUT (see $RAW/apache-error.log)"
	curl -sf -o "$RAW/probe-apache.back" "$(dav_url apache "probe-$STAMP.bin")" && cmp -s "$probe" "$RAW/probe-apache.back" ||
		die "Apache GET did not return the bytes just PUT"
	code=$(http_code -X DELETE "$(dav_url apache "probe-$STAMP.bin")")
	[[ $code == 2?? ]] || die "Apache answered $code to a DELETE"
}

ATTACHD_DELETE=0
start_attachd() {
	local data=$DATA_ROOT/attachd-data args=()
	mkdir -p "$data"
	free_port
	PORT[attachd]=$FREE_PORT
	DATA[attachd]=$data
	args=(serve --listen "127.0.0.1:${PORT[attachd]}" --data-dir "$data")
	[ -n "$ATTACHD_CONFIG" ] && args+=(--config "$ATTACHD_CONFIG")
	"$WORK/attachd" "${args[@]}" >"$RAW/attachd.log" 2>&1 &
	PID[attachd]=$!
	STARTED_PIDS+=("$!")
	BASE[attachd]=http://127.0.0.1:${PORT[attachd]}
	wait_ready attachd "${BASE[attachd]}/readyz" 200
	log "attachd pid ${PID[attachd]} on ${BASE[attachd]}"
	# Probe what the benchmark relies on: a PUT on the Kazoo route, and DELETE under /dav/
	# (used to clean up between runs; optional).
	local probe=$RAW/probe.bin code
	head -c 1024 /dev/urandom >"$probe"
	code=$(http_code -T "$probe" "$(store_url attachd "bench-probe-$STAMP/probe.bin")")
	[[ $code == 2?? ]] || die "attachd answered $code to a Kazoo PUT; the benchmark needs PUT/GET"
	curl -sf -o "$RAW/probe.back" "$(store_url attachd "bench-probe-$STAMP/probe.bin")" && cmp -s "$probe" "$RAW/probe.back" ||
		die "attachd GET did not return the bytes just PUT"
	code=$(http_code -X DELETE "$(dav_url attachd "bench-probe-$STAMP/probe.bin")")
	if [[ $code == 2?? ]]; then
		ATTACHD_DELETE=1
		http_code -X DELETE "$(dav_url attachd "bench-probe-$STAMP/")" >/dev/null
	else
		log "attachd: DELETE /dav/... answered $code: no --prepare for big, benchmark data is left in place"
	fi
	meta attachd_delete "$ATTACHD_DELETE"
}

# --- steps --------------------------------------------------------------------------------------



# run_put ROUND STEP SERVER: wrk PUTs 100 KiB bodies to unique paths under a fresh collection
# (MKCOL'd first unless it is attachd's Kazoo route), which is DELETEd afterwards.
run_put() {
	local r=$1 step=$2 s=$3 prefix="bench-$2-$STAMP-r$1" out=$RAW/r$1-$2-$3.txt code
	if ! kazoo_route "$step" "$s"; then # a WebDAV PUT needs its collection
		code=$(http_code -X MKCOL "$(step_url "$step" "$s" "$prefix/")")
		[ "$code" = 201 ] || log "  MKCOL $prefix/ on $s answered $code"
	fi
	pause "$r" "$step" "$s"
	measure_begin "$s"
	wrk "${WRK_FLAGS[@]}" -s "$BENCH/wrk.lua" "$(step_url "$step" "$s" "$prefix/")" -- put "$PUT_SIZE" >"$out" 2>&1 || true
	measure_end "$r" "$step" "$s"
	parse_wrk "$out" "$r" "$step" "$s"
	if can_delete "$s"; then # free the 1-7 GB just written
		code=$(http_code --max-time 300 -X DELETE "$(dav_url "$s" "$prefix/")")
		[[ $code == 2?? ]] || log "  DELETE $prefix/ on $s answered $code"
	fi
}
step_put() { run_put "$1" put "$2"; }
step_davput() { run_put "$1" davput "$2"; }

# run_get ROUND STEP SERVER: PUT one random 100 KiB file (into bench-STEP/, MKCOL'd first unless
# it is attachd's Kazoo route), check it comes back byte-exact, then wrk GETs it.
GETFILE=
run_get() {
	local r=$1 step=$2 s=$3 path="bench-$2/$2-$STAMP-r$1.bin" out=$RAW/r$1-$2-$3.txt code
	if ! kazoo_route "$step" "$s"; then
		code=$(http_code -X MKCOL "$(step_url "$step" "$s" "bench-$step/")")
		[ "$code" = 201 ] || [ "$code" = 405 ] || log "  MKCOL bench-$step/ on $s answered $code"
	fi
	code=$(http_code -T "$GETFILE" "$(step_url "$step" "$s" "$path")")
	if ! [[ $code == 2?? ]] || ! curl -sf -o "$RAW/get-back.bin" "$(step_url "$step" "$s" "$path")" || ! cmp -s "$GETFILE" "$RAW/get-back.bin"; then
		rec "$r" "$step" "$s" valid 0
		rec "$r" "$step" "$s" note "the 100 KiB file did not come back byte-exact (PUT answered $code)"
		log "  $step $s: PUT answered $code or the file did not come back byte-exact: skipped"
		return
	fi
	pause "$r" "$step" "$s"
	measure_begin "$s"
	wrk "${WRK_FLAGS[@]}" -s "$BENCH/wrk.lua" "$(step_url "$step" "$s" "$path")" -- get >"$out" 2>&1 || true
	measure_end "$r" "$step" "$s"
	parse_wrk "$out" "$r" "$step" "$s"
}
step_get() { run_get "$1" get "$2"; }
step_davget() { run_get "$1" davget "$2"; }

# hf_csv CSV COLUMN: a column of hyperfine's --export-csv row
hf_csv() { awk -F, -v col="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==col) c=i} NR==2 && c{print $c}' "$1"; }

# anon_peak PIDS FILE: the largest anonymous resident size (RssAnon, KiB) of any of PIDS, sampled
# every 50 ms until TERM, then written to FILE.  VmHWM counts the binary's own file pages too
# (for attachd ~20 MiB of its text and read-only data, shared with the page cache and
# reclaimable); this is the memory the process itself holds.  Bash builtins only, but for the
# sleep: 20 forks a second.
anon_peak() {
	local max=0 k v p
	trap 'echo "$max" >"$2"; exit 0' TERM
	while :; do
		for p in $1; do
			while read -r k v _; do
				[ "$k" = RssAnon: ] && [ "$v" -gt "$max" ] && max=$v
			done <"/proc/$p/status" 2>/dev/null || true
		done
		sleep 0.05 &
		wait $!
	done
}

step_big() {
	local r=$1 s=$2 path="big-$STAMP-r$1.bin" csv=$RAW/r$1-big-$2.csv out=$RAW/r$1-big-$2.txt
	local url del p pids prepare=() ok=1 hwm max=0 sum=0 len code sampler
	url=$(store_url "$s" "$path")
	del=$(dav_url "$s" "$path")
	if can_delete "$s"; then
		prepare=(--prepare "curl -s -X DELETE $del")
	fi
	pause "$r" big "$s"
	pids=$(server_pids "$s")
	for p in $pids; do echo 5 >"/proc/$p/clear_refs"; done
	anon_peak "$pids" "$RAW/.anon" &
	sampler=$!
	measure_begin "$s"
	hyperfine -N --runs 3 --export-csv "$csv" "${prepare[@]}" "curl -sf -o /dev/null -T $BIG $url" >"$out" 2>&1 || ok=0
	measure_end "$r" big "$s"
	kill "$sampler" && wait "$sampler" || true
	rec "$r" big "$s" rss_anon_max_kib "$(cat "$RAW/.anon" 2>/dev/null || echo 0)"
	for p in $pids; do
		hwm=$(awk '/^VmHWM:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
		hwm=${hwm:-0}
		sum=$((sum + hwm))
		[ "$hwm" -gt "$max" ] && max=$hwm
	done
	rec "$r" big "$s" rss_max_kib "$max"
	rec "$r" big "$s" rss_tree_kib "$sum"
	rec "$r" big "$s" nprocs "$(wc -w <<<"$pids")"
	if [ "$ok" = 1 ] && [ -s "$csv" ]; then
		rec "$r" big "$s" seconds "$(hf_csv "$csv" median)"
		rec "$r" big "$s" run_min "$(hf_csv "$csv" min)"
		rec "$r" big "$s" run_max "$(hf_csv "$csv" max)"
	else
		rec "$r" big "$s" note "hyperfine failed: $(grep -m1 -i error "$out" | sed "s/\. Use .*//" || tail -n 1 "$out")"
		ok=0
	fi
	len=$(curl -sfI "$url" | tr -d '\r' | awk 'tolower($1)=="content-length:"{print $2}' | tail -n 1 || true)
	if [ -z "$len" ] && [ "$s" = attachd ]; then
		len=$(curl -sfI "$del" | tr -d '\r' | awk 'tolower($1)=="content-length:"{print $2}' | tail -n 1 || true)
	fi
	rec "$r" big "$s" stored_size "${len:-none}"
	if [ "${len:-}" != "$BIG_SIZE" ]; then
		ok=0
		rec "$r" big "$s" note "HEAD Content-Length is ${len:-missing}, not $BIG_SIZE"
	fi
	rec "$r" big "$s" valid "$ok"
	log "  big $s: median $(hf_csv "$csv" median 2>/dev/null || echo '?') s, peak RSS $((max / 1024)) MiB [tree $((sum / 1024))], stored ${len:-?} B"
	if can_delete "$s"; then
		code=$(http_code -X DELETE "$del")
		[[ $code == 2?? ]] || log "  DELETE $path on $s answered $code"
	fi
}

propfind_setup() { # 10 000 x 1 KiB files in propfind-10000/ (nginx, Apache: straight into the root)
	local s=$1 dir
	if [ "$s" != attachd ]; then
		dir=${DATA[$s]}/propfind-10000
		mkdir -p "$dir"
		head -c $((PROPFIND_N * 1024)) /dev/urandom | split -b 1024 -a 6 -d --additional-suffix=.bin - "$dir/f-"
		[ "$s" = apache ] && chown -R "$APACHE_USER:$APACHE_USER" "$dir"
	else
		"$WORK/loader" -url "$(store_url attachd propfind-10000/)" -n "$PROPFIND_N" -size 1024 -c 8 >"$RAW/loader.log" 2>&1 ||
			{ log "  loader failed: $(tail -n 1 "$RAW/loader.log")"; return 1; }
		log "  $(tail -n 1 "$RAW/loader.log")"
	fi
	log "  propfind-10000/ filled on $s"
}

declare -A PROPFIND_READY=()
step_propfind() {
	local r=$1 s=$2 url csv=$RAW/r$1-propfind-$2.csv out=$RAW/r$1-propfind-$2.txt xml=$RAW/r$1-propfind-$2.xml
	local ok=1 res code bytes hrefs
	url=$(dav_url "$s" propfind-10000/)
	if [ "${PROPFIND_READY[$s]:-}" != 1 ]; then
		rec "$r" propfind "$s" valid 0
		rec "$r" propfind "$s" note "could not fill propfind-10000/"
		return
	fi
	pause "$r" propfind "$s"
	measure_begin "$s"
	hyperfine -N --runs 5 --warmup 1 --export-csv "$csv" "curl -sf -X PROPFIND -H 'Depth: 1' -o /dev/null $url" >"$out" 2>&1 || ok=0
	measure_end "$r" propfind "$s"
	if [ "$ok" = 1 ] && [ -s "$csv" ]; then
		rec "$r" propfind "$s" ms "$(awk -v s="$(hf_csv "$csv" median)" 'BEGIN{printf "%.2f", s*1000}')"
	else
		rec "$r" propfind "$s" note "hyperfine failed: $(grep -m1 -i error "$out" | sed "s/\. Use .*//" || tail -n 1 "$out")"
	fi
	res=$(curl -s -X PROPFIND -H 'Depth: 1' -o "$xml" -w '%{http_code} %{size_download}' "$url" || true)
	code=${res% *}
	bytes=${res#* }
	hrefs=$(grep -oiE '<([a-z0-9_]+:)?href[ >]' "$xml" | wc -l || true)
	rec "$r" propfind "$s" bytes "$bytes"
	rec "$r" propfind "$s" hrefs "$hrefs"
	if [ "$code" != 207 ] || [ "$hrefs" != $((PROPFIND_N + 1)) ]; then
		ok=0
		rec "$r" propfind "$s" note "PROPFIND answered $code with $hrefs hrefs, want 207 with $((PROPFIND_N + 1))"
	fi
	rec "$r" propfind "$s" valid "$ok"
	log "  propfind $s: median $(hf_csv "$csv" median 2>/dev/null || echo '?') s, $bytes B, $hrefs hrefs"
}

# --- main ---------------------------------------------------------------------------------------

T0=$(date +%s)
log "bench: rounds=$ROUNDS steps=${STEPS[*]} servers=${SERVERS[*]} tmpfs=$TMPFS raw=$RAW"
install_missing

if mountpoint -q "$TMPFS_DIR" 2>/dev/null; then # left by an interrupted run of this script
	umount "$TMPFS_DIR" || die "$TMPFS_DIR is still mounted"
fi
if [ "$TMPFS" = 1 ]; then
	mkdir -p "$TMPFS_DIR"
	avail_kib=$(awk '/^MemAvailable:/{print $2}' /proc/meminfo)
	size_kib=$((avail_kib - 4 * 1024 * 1024)) # leave 4 GiB for the servers and the page cache
	[ "$size_kib" -gt $((4 * 1024 * 1024)) ] || die "not enough RAM for --tmpfs ($((avail_kib / 1024)) MiB available)"
	mount -t tmpfs -o "size=${size_kib}k,mode=0755" attachd-bench "$TMPFS_DIR"
	MOUNTED=1
	DATA_ROOT=$TMPFS_DIR
	log "tmpfs of $((size_kib / 1024 / 1024)) GiB mounted at $TMPFS_DIR"
else
	DATA_ROOT=$WORK/data
	rm -rf "$DATA_ROOT"
	mkdir -p "$DATA_ROOT"
fi

if has_server attachd; then
	src=$REPO
	if [ -n "$ATTACHD_REV" ]; then
		commit=$(git -C "$REPO" rev-parse --verify --quiet "$ATTACHD_REV^{commit}") || die "--rev: no commit $ATTACHD_REV"
		src=$WORK/src
		rm -rf "$src"
		mkdir -p "$src"
		git -C "$REPO" archive "$commit" | tar -x -C "$src"
	fi
	log "building attachd from $src"
	build_attachd "$src" "$WORK/attachd" >"$RAW/build.log" 2>&1 ||
		die "go build failed (see $RAW/build.log; --servers nginx,apache runs without attachd): $(tail -n 3 "$RAW/build.log")"
	if [ -n "${WANT[propfind]:-}" ]; then
		(cd "$REPO" && go build -o "$WORK/loader" ./bench/loader) >>"$RAW/build.log" 2>&1 || die "building bench/loader failed"
	fi
fi

meta date "$(date '+%F %T %Z')"
meta rounds "$ROUNDS"
meta steps "${STEPS[*]}"
meta servers "${SERVERS[*]}"
meta tmpfs "$TMPFS"
meta machine "$(nproc) vCPU, $(awk '/^MemTotal:/{printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
meta datafs "$(df -T "$DATA_ROOT" | awk 'NR==2{print $2" ("$1")"}') at $DATA_ROOT"
versions=
has_server nginx && versions+="$(nginx -v 2>&1 | sed 's/.*version: //'); "
has_server apache && versions+="$(apache2 -v | sed -n 's/^Server version: //p') event MPM, workers as $APACHE_USER; "
meta versions "$versions$(dpkg-query -W -f='${Package} ${Version}; ' libnginx-mod-http-dav-ext apache2 wrk hyperfine curl 2>/dev/null)$(go version | awk '{print $3}')"
if [ -n "$ATTACHD_REV" ]; then
	meta attachd "$(git -C "$REPO" rev-parse --short "$ATTACHD_REV^{commit}") (built from git archive of $ATTACHD_REV)"
else
	meta attachd "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no commit')$(git -C "$REPO" status --porcelain -- . ':!bench' 2>/dev/null | grep -q . && echo ' (work tree has uncommitted changes outside bench/)' || true)"
fi
# The configuration changes what is measured: the report shows its settings.
[ -n "$ATTACHD_CONFIG" ] &&
	meta attachd_config "$ATTACHD_CONFIG: $(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$ATTACHD_CONFIG" | paste -sd ' ')"
meta raw "$RAW"

for s in "${SERVERS[@]}"; do "start_$s"; done

if [ -n "${WANT[get]:-}${WANT[davget]:-}" ]; then
	GETFILE=$RAW/get-100k.bin
	head -c "$PUT_SIZE" /dev/urandom >"$GETFILE"
fi
if [ -n "${WANT[big]:-}" ]; then
	BIG=$DATA_ROOT/big-upload.bin
	log "creating 1 GiB file $BIG"
	head -c "$BIG_SIZE" /dev/urandom >"$BIG"
fi
if [ -n "${WANT[propfind]:-}" ]; then
	for s in "${SERVERS[@]}"; do
		if propfind_setup "$s"; then PROPFIND_READY[$s]=1; else PROPFIND_READY[$s]=0; fi
	done
fi

for r in $(seq "$ROUNDS"); do
	order=()
	for i in $(seq 0 $((${#SERVERS[@]} - 1))); do order+=("${SERVERS[$(((i + r - 1) % ${#SERVERS[@]}))]}"); done
	rec "$r" round - order "${order[*]}"
	log "round $r/$ROUNDS, order: ${order[*]}"
	for step in "${STEPS[@]}"; do
		for s in "${order[@]}"; do
			"step_$step" "$r" "$s"
		done
	done
done
meta elapsed "$(($(date +%s) - T0)) s"

mkdir -p "$(dirname "$RESULTS")"
"$BENCH/report.sh" "$RAW" >"$RESULTS"
cp "$RESULTS" "$RAW/"
cat "$RESULTS"
log "table written to $RESULTS (raw outputs in $RAW); took $(($(date +%s) - T0)) s"
