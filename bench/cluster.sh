#!/usr/bin/env bash
# bench/cluster.sh: one interleaved benchmark run of attachd as a cluster (three nodes sharing a
# PostgreSQL index and a MinIO bucket, behind nginx as a round-robin balancer) beside one attachd
# node with its embedded SQLite index, on the same machine, with bench/run.sh's method (wrk +
# bench/wrk.lua, 100 KiB PUT and GET, interleaved rounds), and the PostgreSQL round trips,
# statements and transactions per PUT.  What it measures and how to read the table:
# bench/README.md, section "Cluster".
set -euo pipefail

usage() {
	cat <<'EOF'
usage: bench/cluster.sh [--rounds N] [--write-mode through|spool] [--only put,get,rt]
                        [--targets cluster,single-lb,single,single-s3] [--rt-puts N] [--pg-delay MS]
                        [--read-cache SIZE] [--wait-quiet S] [--rev REV]
       bench/cluster.sh --report RAWDIR

  --rounds N         interleaved rounds, target order rotated each round (default 3)
  --write-mode M     [storage] write_mode of the S3-backed nodes: through (default) or spool
  --only LIST        steps (default put,get,rt): put/get are the wrk measurements, rt counts
                     the PostgreSQL round trips of --rt-puts sequential PUTs after the rounds
  --targets LIST     what put/get run against (default all four):
                       cluster    nginx round-robin -> 3 nodes, PostgreSQL index, S3 (MinIO)
                       single-lb  nginx -> 1 node, SQLite index, local data dir
                       single     1 node, SQLite index, local data dir (the default setup)
                       single-s3  1 node, SQLite index, S3 (MinIO) in the same write mode
  --rt-puts N        sequential PUTs for the round-trip count (default 1000)
  --pg-delay MS      in the round-trip step, bench/pgcount holds each answer that ends a round
                     trip MS milliseconds (default 0): the sequential PUT latency it reports is
                     then that of nodes whose PostgreSQL is that far away
  --read-cache SIZE  [storage] read_cache of the S3-backed nodes (default: attachd's default;
                     "0" reads every GET's bytes from the backend)
  --wait-quiet S     before each measurement, wait up to S s (default 0) while other
                     processes keep more than 15 % of the CPUs busy (shared machines)
  --rev REV          build attachd and the plugins from git revision REV (git archive into
                     $WORK/src) instead of the work tree
  --report RAWDIR    only re-render the table of an earlier run from its raw dir

PostgreSQL and MinIO: started with .ci/postgres.sh and .ci/minio.sh under $WORK (PostgreSQL then
restarted once with pg_stat_statements loaded), unless ATTACHD_TEST_PG_URL (and the three
ATTACHD_TEST_S3_* variables) are set, in which case those servers are used (a fresh database and
fresh buckets either way).  Work dir: $ATTACHD_BENCH_WORK (default /tmp/attachd-bench-cluster);
raw outputs in $WORK/raw/<stamp>-cluster/; the table is written to
bench/results/<date>-cluster[-spool].md.  Run as root.
EOF
}

die() { echo "cluster.sh: $*" >&2; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BENCH=$REPO/bench

# --- report ------------------------------------------------------------------------------------

# render_report RAWDIR: results.tsv + meta.tsv + rt.tsv (+ rt-statements.tsv) -> Markdown.
render_report() {
	local raw=$1
	[ -f "$raw/results.tsv" ] && [ -f "$raw/meta.tsv" ] || die "no results.tsv/meta.tsv in $raw"
	touch "$raw/rt.tsv" "$raw/rt-statements.tsv"
	awk -F'\t' '
function fmt(x, dec,    s, ip, fp, neg, out) {
	s = sprintf("%." dec "f", x)
	neg = ""
	if (substr(s, 1, 1) == "-") { neg = "-"; s = substr(s, 2) }
	ip = s; fp = ""
	if (index(s, ".") > 0) { ip = substr(s, 1, index(s, ".") - 1); fp = substr(s, index(s, ".")) }
	out = ""
	while (length(ip) > 3) { out = " " substr(ip, length(ip) - 2) out; ip = substr(ip, 1, length(ip) - 3) }
	return neg ip out fp
}
function collect(step, t, key, scale,    r, i, j, x, k) {
	nv = 0
	for (r = 1; r <= rounds; r++) {
		k = r SUBSEP step SUBSEP t
		if (v[k, "valid"] != "1" || !((k, key) in v) || v[k, key] == "") continue
		vals[++nv] = v[k, key] * scale
	}
	for (i = 2; i <= nv; i++) { x = vals[i]; for (j = i - 1; j >= 1 && vals[j] > x; j--) vals[j + 1] = vals[j]; vals[j + 1] = x }
	if (nv == 0) { MED = ""; return 0 }
	MIN = vals[1]; MAX = vals[nv]
	MED = (nv % 2) ? vals[(nv + 1) / 2] : (vals[nv / 2] + vals[nv / 2 + 1]) / 2
	return nv
}
function cell(step, t, key, scale, dec) {
	if (!collect(step, t, key, scale)) return "–"
	if (nv == 1 || fmt(MIN, dec) == fmt(MAX, dec)) return fmt(MED, dec)
	return fmt(MED, dec) " (" fmt(MIN, dec) "–" fmt(MAX, dec) ")"
}
function med(step, t, key) { collect(step, t, key, 1); return MED }
function validity(step, t,    r, n, bad, k) {
	n = 0; bad = ""
	for (r = 1; r <= rounds; r++) {
		k = r SUBSEP step SUBSEP t
		if (!((k, "valid") in v)) continue
		n++
		if (v[k, "valid"] != "1") bad = bad (bad == "" ? "" : ", ") "r" r
	}
	if (n == 0) return "not run"
	if (bad == "") return "all " n " valid"
	return "**INVALID: " bad "** of " n
}
function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "–" : fmt(a / b, 2) "×" }
function has(list, x) { return index(" " list " ", " " x " ") > 0 }
function val(k, key, dec) { return (((k, key) in v) && v[k, key] != "") ? fmt(v[k, key], dec) : "–" }
function rtv(key) { return (key in rt) ? rt[key] : "" }
function perput(key, dec) { return (rtv(key) == "" || rtv("puts") + 0 == 0) ? "–" : fmt(rtv(key) / rt["puts"], dec) }

FILENAME ~ /\/meta\.tsv$/ { meta[$1] = $2; next }
FILENAME ~ /\/rt\.tsv$/ { rt[$1] = $2; next }
FILENAME ~ /\/rt-statements\.tsv$/ { stq[++nst] = $0; next }
{
	k = $1 SUBSEP $2 SUBSEP $3
	if ($4 == "note") note[++nn] = "r" $1 " " $2 " " $3 ": " $5
	else v[k, $4] = $5
	if ($2 == "round") order[$1] = $5
}
END {
	rounds = meta["rounds"] + 0
	if (!has(meta["steps"], "put") && !has(meta["steps"], "get")) rounds = 0
	nt = split(meta["targets"], targets, " ")
	label["cluster"] = "cluster: nginx → 3 nodes, PostgreSQL index, S3 (MinIO), " meta["write_mode"]
	label["single-lb"] = "nginx → 1 node, SQLite index, local disk"
	label["single"] = "1 node, SQLite index, local disk (default setup)"
	label["single-s3"] = "1 node, SQLite index, S3 (MinIO), " meta["write_mode"]

	printf "# attachd as a cluster vs one node: %s, write mode %s\n\n", meta["date"], meta["write_mode"]
	if ("read_cache" in meta) printf "- Read cache of the S3-backed nodes (`[storage] read_cache`): %s.\n", meta["read_cache"]
	printf "- Run: %d interleaved round(s), steps: %s; target order rotated each round (", rounds, meta["steps"]
	for (r = 1; r <= rounds; r++) printf "%sr%d: %s", (r > 1 ? "; " : ""), r, order[r]
	printf "); `sync` + 2 s pause before every measurement; took %s.\n", meta["elapsed"]
	printf "- Load: `wrk -t2 -c8 -d10s --timeout 30s --latency -s bench/wrk.lua` as in bench/run.sh: PUT 100 KiB bodies to unique paths on the Kazoo route (a fresh collection per run, DELETEd under /dav/ afterwards), GET of one 100 KiB object (PUT first, read back and compared byte for byte).\n"
	printf "- Machine: %s; data dirs, PostgreSQL and MinIO: %s. Everything (wrk, nginx, the nodes, PostgreSQL, MinIO) shares these CPUs.\n", meta["machine"], meta["datafs"]
	printf "- Versions: %s; attachd %s.\n", meta["versions"], meta["attachd"]
	printf "- Set-up: %s\n", meta["setup"]
	maxbz = -1; maxot = -1
	for (kk in v) {
		split(kk, p, SUBSEP)
		if (p[4] == "idle_busy_pct" && v[kk] + 0 > maxbz) maxbz = v[kk] + 0
		if (p[4] == "other_cpu_pct" && v[kk] + 0 > maxot) maxot = v[kk] + 0
	}
	if (maxbz >= 0) printf "- Other load: at most %d %% of the CPUs were busy in the 2 s pauses before a measurement (the idle nodes, PostgreSQL and MinIO included), and processes outside the measured target and wrk used at most %d %% during a measurement%s.\n", maxbz, maxot, (maxbz > 15 || maxot > 15 ? " (**runs flagged in bold below shared the machine with something else: compare them with care**)" : "")
	printf "- Cells: median over valid rounds (min–max). A wrk run with any non-2xx status or socket error is INVALID and left out of the median. Raw outputs: `%s` (not committed).\n\n", meta["raw"]

	if (rounds > 0) printf "| target | PUT req/s | PUT MB/s | PUT p50 / p99 ms | GET req/s | GET MB/s | GET p50 / p99 ms | runs PUT / GET |\n|---|---|---|---|---|---|---|---|\n"
	for (i = 1; i <= nt && rounds > 0; i++) {
		t = targets[i]
		printf "| %s | %s | %s | %s / %s | %s | %s | %s / %s | %s / %s |\n", label[t],
			cell("put", t, "rps", 1, 0), cell("put", t, "rps", 0.1024, 0), cell("put", t, "p50_ms", 1, 2), cell("put", t, "p99_ms", 1, 1),
			cell("get", t, "rps", 1, 0), cell("get", t, "rps", 0.1024, 0), cell("get", t, "p50_ms", 1, 2), cell("get", t, "p99_ms", 1, 1),
			validity("put", t), validity("get", t)
	}

	if (rounds > 0) printf "\n## Ratios (req/s over req/s, medians; higher is better)\n\n| ratio | what it isolates | PUT | GET |\n|---|---|---|---|\n"
	if (rounds > 0 && has(meta["targets"], "cluster") && has(meta["targets"], "single"))
		printf "| **cluster / single** | the whole cost of the cluster set-up against the default single node | **%s** | **%s** |\n", ratio(med("put", "cluster", "rps"), med("put", "single", "rps")), ratio(med("get", "cluster", "rps"), med("get", "single", "rps"))
	if (rounds > 0 && has(meta["targets"], "cluster") && has(meta["targets"], "single-s3"))
		printf "| **cluster / single-s3** | PostgreSQL index + balancer + 3 processes, same S3 backend and write mode | **%s** | **%s** |\n", ratio(med("put", "cluster", "rps"), med("put", "single-s3", "rps")), ratio(med("get", "cluster", "rps"), med("get", "single-s3", "rps"))
	if (rounds > 0 && has(meta["targets"], "cluster") && has(meta["targets"], "single-lb"))
		printf "| cluster / single-lb | PostgreSQL index + S3 + 3 processes, same balancer hop | %s | %s |\n", ratio(med("put", "cluster", "rps"), med("put", "single-lb", "rps")), ratio(med("get", "cluster", "rps"), med("get", "single-lb", "rps"))
	if (rounds > 0 && has(meta["targets"], "single-s3") && has(meta["targets"], "single"))
		printf "| single-s3 / single | the S3 backend (MinIO) against the local data dir, SQLite index both | %s | %s |\n", ratio(med("put", "single-s3", "rps"), med("put", "single", "rps")), ratio(med("get", "single-s3", "rps"), med("get", "single", "rps"))
	if (rounds > 0 && has(meta["targets"], "single-lb") && has(meta["targets"], "single"))
		printf "| single-lb / single | the nginx hop alone | %s | %s |\n", ratio(med("put", "single-lb", "rps"), med("put", "single", "rps")), ratio(med("get", "single-lb", "rps"), med("get", "single", "rps"))

	if (rtv("puts") != "") {
		printf "\n## PostgreSQL round trips per PUT (cluster, %s)\n\n", meta["write_mode"]
		printf "%s sequential 100 KiB PUTs (one curl, one keep-alive connection to nginx, so round-robin over the 3 nodes) to unique paths, after %s warm-up PUTs, with the nodes restarted so that their index URL points at `bench/pgcount`, a proxy that forwards the PostgreSQL protocol and counts its messages; %s s of idle background were measured just before and are subtracted pro rata (%s s from before the first PUT to the reading after; the nodes were idle for %s s after the last PUT before it). All %s PUTs answered 201: %s. Sequential PUT latency through the cluster: %s ms mean%s.\n\n", rt["puts"], rt["warmup"], rt["bg_seconds"], rt["window_seconds"], rt["settle_seconds"], rt["puts"], rt["all_201"], rt["put_ms"], (rtv("pg_delay_ms") + 0 > 0 ? ", with `--pg-delay " rt["pg_delay_ms"] "`: pgcount held each answer that ends a round trip " rt["pg_delay_ms"] " ms" : "")
		printf "| counter (whole cluster, all 3 nodes) | per PUT | raw total | idle background in the same time |\n|---|---|---|---|\n"
		printf "| **round trips**: server ReadyForQuery messages (one per Sync or simple Query the client waits on; a pgx batch is one) | **%s** | %s | %s |\n", perput("rfq", 2), rt["rfq_raw"], rt["rfq_bg"]
		printf "| statements sent: Execute + simple Query messages (the batch that begins a transaction sends BEGIN, the version bump and the first statement at once) | %s | %s | %s |\n", perput("stmts", 2), rt["stmts_raw"], rt["stmts_bg"]
		printf "| statements prepared (Parse messages; pgx prepares each statement once per connection and caches it, so after the warm-up this is about 0) | %s | %s | %s |\n", perput("parse", 2), rt["parse_raw"], rt["parse_bg"]
		printf "| bytes client → PostgreSQL / PostgreSQL → client | %s / %s | %s / %s | |\n", perput("c2s", 0), perput("s2c", 0), rt["c2s_raw"], rt["s2c_raw"]
		printf "| transactions: `pg_stat_database` xact_commit + xact_rollback of the bench database (a statement outside BEGIN…COMMIT is a transaction of its own; autovacuum counts too) | %s | %s | %s |\n", perput("xacts", 2), rt["xacts_raw"], rt["xacts_bg"]
		if (rtv("pss") != "")
			printf "| statements executed: `pg_stat_statements` calls in the bench database (COMMIT included; the BEGIN sent in a batch is not counted) | %s | %s | %s |\n", perput("pss", 2), rt["pss_raw"], rt["pss_bg"]
		else
			printf "| statements executed: `pg_stat_statements` | – (%s) | | |\n", rt["pss_note"]
		printf "| PostgreSQL connections opened by the nodes (proxy) | %s total | | |\n", rt["conns"]
		if (nst > 0) {
			printf "\n`pg_stat_statements` per PUT, largest first (calls during the %s PUTs and their settling, minus nothing: background included):\n\n| calls per PUT | statement |\n|---|---|\n", rt["puts"]
			for (i = 1; i <= nst; i++) { split(stq[i], q, "\t"); printf "| %s | `%s` |\n", fmt(q[1] / rt["puts"], 2), q[2] }
		}
	}

	if (rounds > 0) printf "\n## Every run\n\n| round | step | target | result | statuses | other CPU %%: pause before / during |\n|---|---|---|---|---|---|\n"
	for (r = 1; r <= rounds; r++) {
		no = split(order[r], ord, " ")
		for (st = 1; st <= 2; st++) {
			step = (st == 1 ? "put" : "get")
			for (i = 1; i <= no; i++) {
				t = ord[i]; k = r SUBSEP step SUBSEP t
				if (!((k, "valid") in v)) continue
				res = val(k, "rps", 0) " req/s, p50 " val(k, "p50_ms", 2) " / p99 " val(k, "p99_ms", 1) " ms, " val(k, "requests", 0) " requests"
				bz = (((k, "idle_busy_pct") in v) ? v[k, "idle_busy_pct"] : "–") " / " (((k, "other_cpu_pct") in v) ? v[k, "other_cpu_pct"] : "–")
				if (v[k, "idle_busy_pct"] + 0 > 15 || v[k, "other_cpu_pct"] + 0 > 15) bz = "**" bz "**"
				if ((k, "waited_s") in v) bz = bz " (waited " v[k, "waited_s"] " s)"
				printf "| %d | %s | %s | %s | %s%s | %s |\n", r, step, t, res, v[k, "statuses"], (v[k, "valid"] == "1" ? "" : " **INVALID**"), bz
			}
		}
	}
	if (nn > 0) {
		printf "\n## Notes\n\n"
		for (i = 1; i <= nn; i++) printf "- %s\n", note[i]
	}
}
' "$raw/meta.tsv" "$raw/rt.tsv" "$raw/rt-statements.tsv" "$raw/results.tsv"
}

# --- arguments ---------------------------------------------------------------------------------

ROUNDS=3
WRITE_MODE=through
ONLY=put,get,rt
TARGET_LIST=cluster,single-lb,single,single-s3
RT_PUTS=1000
PG_DELAY=0
READ_CACHE=
WAIT_QUIET=0
ATTACHD_REV=
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) [ $# -ge 2 ] || die "--rounds needs a number"; ROUNDS=$2; shift ;;
	--rounds=*) ROUNDS=${1#*=} ;;
	--write-mode) [ $# -ge 2 ] || die "--write-mode needs through or spool"; WRITE_MODE=$2; shift ;;
	--write-mode=*) WRITE_MODE=${1#*=} ;;
	--only) [ $# -ge 2 ] || die "--only needs a list"; ONLY=$2; shift ;;
	--only=*) ONLY=${1#*=} ;;
	--targets) [ $# -ge 2 ] || die "--targets needs a list"; TARGET_LIST=$2; shift ;;
	--targets=*) TARGET_LIST=${1#*=} ;;
	--rt-puts) [ $# -ge 2 ] || die "--rt-puts needs a number"; RT_PUTS=$2; shift ;;
	--rt-puts=*) RT_PUTS=${1#*=} ;;
	--pg-delay) [ $# -ge 2 ] || die "--pg-delay needs milliseconds"; PG_DELAY=$2; shift ;;
	--pg-delay=*) PG_DELAY=${1#*=} ;;
	--read-cache) [ $# -ge 2 ] || die "--read-cache needs a size"; READ_CACHE=$2; shift ;;
	--read-cache=*) READ_CACHE=${1#*=} ;;
	--wait-quiet) [ $# -ge 2 ] || die "--wait-quiet needs seconds"; WAIT_QUIET=$2; shift ;;
	--wait-quiet=*) WAIT_QUIET=${1#*=} ;;
	--rev) [ $# -ge 2 ] || die "--rev needs a git revision"; ATTACHD_REV=$2; shift ;;
	--rev=*) ATTACHD_REV=${1#*=} ;;
	--report) [ $# -ge 2 ] || die "--report needs a raw dir"; render_report "$2"; exit 0 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
	shift
done

READ_CACHE_TOML=${READ_CACHE:+"read_cache = \"$READ_CACHE\""}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, got '$ROUNDS'"
[[ $RT_PUTS =~ ^[1-9][0-9]*$ ]] || die "--rt-puts must be a positive integer, got '$RT_PUTS'"
[[ $PG_DELAY =~ ^[0-9]+$ ]] || die "--pg-delay must be a whole number of milliseconds, got '$PG_DELAY'"
[[ $WAIT_QUIET =~ ^[0-9]+$ ]] || die "--wait-quiet must be a number of seconds, got '$WAIT_QUIET'"
case $WRITE_MODE in through | spool) ;; *) die "--write-mode: through or spool, got '$WRITE_MODE'" ;; esac
declare -A WANT=()
IFS=, read -ra only_items <<<"$ONLY"
for s in "${only_items[@]}"; do
	case $s in put | get | rt) WANT[$s]=1 ;; *) die "--only: unknown step '$s' (put,get,rt)" ;; esac
done
STEPS=()
for s in put get; do [ -n "${WANT[$s]:-}" ] && STEPS+=("$s"); done
TARGETS=()
has_target() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
IFS=, read -ra target_items <<<"$TARGET_LIST"
for s in "${target_items[@]}"; do
	case $s in cluster | single-lb | single | single-s3) has_target "$s" || TARGETS+=("$s") ;; *) die "--targets: unknown target '$s' (cluster,single-lb,single,single-s3)" ;; esac
done
[ ${#TARGETS[@]} -gt 0 ] || die "--targets: none"
[ ${#STEPS[@]} -gt 0 ] || [ -n "${WANT[rt]:-}" ] || die "--only: no steps"
[ "$(id -u)" = 0 ] || die "run as root: it may apt-get install, and .ci/postgres.sh runs PostgreSQL as postgres"
# The cluster is needed for the round-trip count even when it is not a put/get target.
NEED_CLUSTER=0
{ has_target cluster && [ ${#STEPS[@]} -gt 0 ]; } || [ -n "${WANT[rt]:-}" ] && NEED_CLUSTER=1
NEED_NGINX=0
{ [ "$NEED_CLUSTER" = 1 ] || has_target single-lb; } && NEED_NGINX=1
NEED_S3=0
{ [ "$NEED_CLUSTER" = 1 ] || has_target single-s3; } && NEED_S3=1
NEED_SINGLE=0
{ has_target single || has_target single-lb; } && [ ${#STEPS[@]} -gt 0 ] && NEED_SINGLE=1

WORK=${ATTACHD_BENCH_WORK:-/tmp/attachd-bench-cluster}
STAMP=$(date +%Y%m%d-%H%M%S)
RAW=$WORK/raw/$STAMP-cluster
SUFFIX=-cluster
[ "$WRITE_MODE" = spool ] && SUFFIX=-cluster-spool
RESULTS=$BENCH/results/$(date +%F)$SUFFIX.md
[ -e "$RESULTS" ] && RESULTS=$BENCH/results/$(date +%F-%H%M%S)$SUFFIX.md
TSV=$RAW/results.tsv
PUT_SIZE=102400 # 100 KiB
WRK_FLAGS=(-t2 -c8 -d10s --timeout 30s --latency)
NODES=3
BUCKET_PREFIX=attachd-bench-$(tr -dc 'a-z0-9' <<<"$STAMP")

mkdir -p "$RAW"
: >"$TSV"
: >"$RAW/meta.tsv"
: >"$RAW/rt.tsv"
: >"$RAW/rt-statements.tsv"
. "$BENCH/lib.sh" # log, rec, apt_install, free_port, http_code, pause, measure_*, parse_wrk
meta() { printf '%s\t%s\n' "$1" "$2" >>"$RAW/meta.tsv"; }
rtrec() { printf '%s\t%s\n' "$1" "$2" >>"$RAW/rt.tsv"; }

# --- cleanup: stop exactly what this script started, by PID ------------------------------------

STARTED_PIDS=()
PG_DIR= MINIO_DIR= BENCH_DB= ADMIN_URL=
DATA_ROOT=$WORK/data
stop_pid() { # PID: SIGTERM, 10 s, SIGKILL
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && { log "pid $pid ignored SIGTERM for 10 s: SIGKILL"; kill -KILL "$pid"; }
	wait "$pid" 2>/dev/null || true
}
forget_pid() { # PID: no longer ours to stop (it was stopped)
	local keep=() p
	for p in "${STARTED_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	STARTED_PIDS=("${keep[@]}")
}
cleanup() {
	local rc=$? pid c0=$SECONDS
	set +e
	trap - EXIT INT TERM
	for pid in "${STARTED_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${STARTED_PIDS[@]}"; do stop_pid "$pid"; done
	if [ -n "$PG_DIR" ]; then
		"$REPO/.ci/postgres.sh" stop "$PG_DIR" >>"$RAW/run.log" 2>&1
	elif [ -n "$BENCH_DB" ]; then
		psql -X -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >>"$RAW/run.log" 2>&1
	fi
	[ -n "$MINIO_DIR" ] && "$REPO/.ci/minio.sh" stop "$MINIO_DIR" >>"$RAW/run.log" 2>&1
	[ -n "$PG_DIR" ] && rm -rf "$PG_DIR/data"
	[ -n "$MINIO_DIR" ] && rm -rf "$MINIO_DIR/data"
	rm -rf "$DATA_ROOT"
	[ $((SECONDS - c0)) -gt 5 ] && log "clean-up (stop servers, delete data) took $((SECONDS - c0)) s"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools --------------------------------------------------------------------------------------

install_missing() {
	local need=() p
	[ "$NEED_NGINX" = 1 ] && ! command -v nginx >/dev/null && need+=(nginx)
	for p in wrk curl psql; do command -v "$p" >/dev/null || need+=("$p"); done
	[[ " ${need[*]} " == *" psql "* ]] && need=("${need[@]/psql/postgresql-client}")
	apt_install "${need[@]}"
}


wait_ready() { # NAME PID URL
	local name=$1 pid=$2 url=$3 code i
	for i in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || die "$name exited during start-up, see $RAW/$name.log"
		code=$(http_code --max-time 2 "$url")
		[ "$code" = 200 ] && return
		sleep 0.1
	done
	die "$name not ready after 30 s ($url answered $code)"
}

# --- PostgreSQL and MinIO ----------------------------------------------------------------------

PG_BIN=
PG_SOCKET= PG_PORT=
PSS=0 # pg_stat_statements readable
start_postgres() {
	if [ -n "${ATTACHD_TEST_PG_URL:-}" ]; then
		log "PostgreSQL: using ATTACHD_TEST_PG_URL (not restarted; pg_stat_statements only if already loaded)"
	else
		PG_DIR=$WORK/postgres
		"$REPO/.ci/postgres.sh" stop "$PG_DIR" >/dev/null 2>&1 || true
		"$REPO/.ci/postgres.sh" start "$PG_DIR" >"$RAW/postgres-start.log" 2>&1 || die "postgres.sh start failed: $(tail -n 5 "$RAW/postgres-start.log")"
		. "$PG_DIR/env"
		PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
		PG_SOCKET=$PG_DIR
		PG_PORT=$(sed -E 's|.*@[^:/]+:([0-9]+)/.*|\1|' <<<"$ATTACHD_TEST_PG_URL")
		# pg_stat_statements must be in shared_preload_libraries: set it, restart once (pg_ctl
		# restart keeps the options postgres.sh started it with, from postmaster.opts).
		runuser -u postgres -- "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET" -p "$PG_PORT" -U postgres -d postgres \
			-c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >>"$RAW/postgres-start.log" 2>&1 &&
			runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 -s -m fast restart >>"$RAW/postgres-start.log" 2>&1 ||
			die "restarting PostgreSQL with pg_stat_statements failed: $(tail -n 5 "$RAW/postgres-start.log")"
		head -n 1 "$PG_DIR/data/postmaster.pid" >"$PG_DIR/postgres.pid"
		runuser -u postgres -- "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET" -p "$PG_PORT" -U postgres -d attachd \
			-c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >>"$RAW/postgres-start.log" 2>&1 ||
			log "CREATE EXTENSION pg_stat_statements failed: statements per PUT from the proxy only"
		log "PostgreSQL pid $(cat "$PG_DIR/postgres.pid") on port $PG_PORT (pg_stat_statements loaded)"
	fi
	ADMIN_URL=$ATTACHD_TEST_PG_URL
	PG_HOSTPORT=$(sed -E 's|.*@([^/]+)/.*|\1|' <<<"$ADMIN_URL")
	BENCH_DB=bench_$(tr -dc '0-9' <<<"$STAMP")_$$
	psql -X -q -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "CREATE DATABASE $BENCH_DB" >>"$RAW/postgres-start.log" 2>&1 ||
		die "CREATE DATABASE $BENCH_DB failed: $(tail -n 3 "$RAW/postgres-start.log")"
	BENCH_DB_URL=$(sed -E "s|^(postgres(ql)?://[^/]+/)[^?]*|\1$BENCH_DB|" <<<"$ADMIN_URL")
	if psql -X -q -t -A "$ADMIN_URL" -c "SELECT count(*) FROM pg_stat_statements" >/dev/null 2>&1; then PSS=1; fi
	meta postgres "$(psql -X -t -A "$ADMIN_URL" -c 'SHOW server_version' 2>/dev/null | awk '{print $1}')"
}

start_minio() {
	if [ -n "${ATTACHD_TEST_S3_ENDPOINT:-}" ]; then
		log "MinIO: using ATTACHD_TEST_S3_ENDPOINT=$ATTACHD_TEST_S3_ENDPOINT"
	else
		MINIO_DIR=$WORK/minio
		"$REPO/.ci/minio.sh" stop "$MINIO_DIR" >/dev/null 2>&1 || true
		"$REPO/.ci/minio.sh" start "$MINIO_DIR" >"$RAW/minio-start.log" 2>&1 || die "minio.sh start failed: $(tail -n 5 "$RAW/minio-start.log")"
		. "$MINIO_DIR/env"
		log "MinIO pid $(cat "$MINIO_DIR/minio.pid") on $ATTACHD_TEST_S3_ENDPOINT"
	fi
	if [ -n "$MINIO_DIR" ]; then
		meta minio "$(sed -n 's/^minio_version=//p' "$REPO/.ci/minio.sh")"
	else
		meta minio "(external)"
	fi
}

# --- attachd nodes -----------------------------------------------------------------------------

declare -A PID=() BASE=() PORT=()
PLUGIN_SHA=
# s3_toml BUCKET: the [plugins], [storage] and [plugin.s3] tables (the plugin makes the bucket).
s3_toml() {
	cat <<EOF
[plugins]
dir = "$WORK/plugins"
[storage]
backend = "s3"
write_mode = "$WRITE_MODE"
$READ_CACHE_TOML
[plugin.s3]
sha256 = "$PLUGIN_SHA"
[plugin.s3.config]
endpoint = "$ATTACHD_TEST_S3_ENDPOINT"
bucket = "$1"
path_style = true
access_key_id = "$ATTACHD_TEST_S3_ACCESS_KEY"
[plugin.s3.secrets]
secret_access_key = "$ATTACHD_TEST_S3_SECRET_KEY"
EOF
}

# start_node NAME PORT [CONFIG]: attachd serve on 127.0.0.1:PORT with data dir DATA_ROOT/NAME.
start_node() {
	local name=$1 port=$2 cfg=${3:-} args
	mkdir -p "$DATA_ROOT/$name"
	args=(serve --listen "127.0.0.1:$port" --data-dir "$DATA_ROOT/$name")
	[ -n "$cfg" ] && args+=(--config "$cfg")
	"$WORK/attachd" "${args[@]}" >>"$RAW/$name.log" 2>&1 &
	PID[$name]=$!
	STARTED_PIDS+=("$!")
	PORT[$name]=$port
	BASE[$name]=http://127.0.0.1:$port
	wait_ready "$name" "${PID[$name]}" "${BASE[$name]}/readyz"
}

CLUSTER_SECRET=bench-cluster-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
# write_node_config N INDEX_URL: node N's config file.
write_node_config() {
	local n=$1 url=$2 cfg=$WORK/run/node$1.toml
	{
		s3_toml "$BUCKET_PREFIX-cluster"
		printf '[index]\nurl = "%s"\n[cluster]\nadvertise_url = "http://127.0.0.1:%s"\nsecret = "%s"\n' "$url" "${PORT[node$n]}" "$CLUSTER_SECRET"
	} >"$cfg"
	chmod 600 "$cfg"
}

start_cluster() {
	local n
	for n in $(seq "$NODES"); do free_port; PORT[node$n]=$FREE_PORT; done
	for n in $(seq "$NODES"); do
		write_node_config "$n" "$BENCH_DB_URL"
		start_node "node$n" "${PORT[node$n]}" "$WORK/run/node$n.toml"
		log "node$n pid ${PID[node$n]} on ${BASE[node$n]} (index: PostgreSQL $BENCH_DB, bucket $BUCKET_PREFIX-cluster, $WRITE_MODE)"
	done
}

# restart_cluster INDEX_URL: stop the nodes by PID and start them again on the same ports and
# data dirs with another index URL (the same database behind it).
restart_cluster() {
	local n pid
	for n in $(seq "$NODES"); do
		pid=${PID[node$n]}
		stop_pid "$pid"
		forget_pid "$pid"
	done
	for n in $(seq "$NODES"); do
		write_node_config "$n" "$1"
		start_node "node$n" "${PORT[node$n]}" "$WORK/run/node$n.toml"
	done
}

start_single() {
	free_port
	start_node single "$FREE_PORT"
	log "single pid ${PID[single]} on ${BASE[single]} (SQLite index, local data dir)"
}

start_single_s3() {
	local cfg=$WORK/run/single-s3.toml
	s3_toml "$BUCKET_PREFIX-single" >"$cfg"
	chmod 600 "$cfg"
	free_port
	start_node single-s3 "$FREE_PORT" "$cfg"
	log "single-s3 pid ${PID[single-s3]} on ${BASE[single-s3]} (SQLite index, bucket $BUCKET_PREFIX-single, $WRITE_MODE)"
}

# nginx as the balancer: round-robin (its default) over the nodes with keep-alive connections to
# them, bodies streamed both ways (no request or response buffering to temp files), no access log.
start_nginx() {
	local run=$WORK/run/nginx n ups=
	rm -rf "$run"
	mkdir -p "$run"
	for n in $(seq "$NODES"); do [ -n "${PORT[node$n]:-}" ] && ups+="        server 127.0.0.1:${PORT[node$n]};"$'\n'; done
	free_port
	PORT[lb]=$FREE_PORT
	free_port
	PORT[lb1]=$FREE_PORT
	cat >"$run/nginx.conf" <<EOF
# Written by bench/cluster.sh: nginx as a round-robin balancer in front of attachd.
user root;
worker_processes auto;
pid $run/nginx.pid;
error_log $run/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_max_body_size 0;
    client_body_temp_path $run/client_temp;
    proxy_temp_path $run/proxy_temp;
    fastcgi_temp_path $run/fastcgi_temp;
    uwsgi_temp_path $run/uwsgi_temp;
    scgi_temp_path $run/scgi_temp;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$http_host;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_read_timeout 300s;
    proxy_send_timeout 300s;
$([ -n "$ups" ] && printf '    upstream cluster {\n%s        keepalive 32;\n    }\n    server {\n        listen 127.0.0.1:%s;\n        location / { proxy_pass http://cluster; }\n    }\n' "$ups" "${PORT[lb]}")
$([ -n "${PORT[single]:-}" ] && printf '    upstream single {\n        server 127.0.0.1:%s;\n        keepalive 32;\n    }\n    server {\n        listen 127.0.0.1:%s;\n        location / { proxy_pass http://single; }\n    }\n' "${PORT[single]}" "${PORT[lb1]}")
}
EOF
	cp "$run/nginx.conf" "$RAW/nginx.conf"
	nginx -t -p "$run/" -e "$run/error.log" -c "$run/nginx.conf" >"$RAW/nginx-t.log" 2>&1 ||
		die "nginx -t failed: $(cat "$RAW/nginx-t.log")"
	nginx -p "$run/" -e "$run/error.log" -c "$run/nginx.conf" -g 'daemon off;' >"$RAW/nginx.log" 2>&1 &
	PID[nginx]=$!
	STARTED_PIDS+=("$!")
	BASE[cluster]=http://127.0.0.1:${PORT[lb]}
	BASE[single-lb]=http://127.0.0.1:${PORT[lb1]}
	local i
	for i in $(seq 100); do
		kill -0 "${PID[nginx]}" 2>/dev/null || die "nginx exited during start-up, see $run/error.log"
		[ "$(http_code --max-time 2 "${BASE[cluster]}/readyz")" = 200 ] || [ -z "$ups" ] && break
		sleep 0.1
	done
	log "nginx pid ${PID[nginx]}: cluster balancer ${BASE[cluster]}, single-node proxy ${BASE[single-lb]}; workers $(pgrep -P "${PID[nginx]}" | tr '\n' ' ')"
}

# target_pids TARGET: the processes that serve it (with their children: nginx workers, the s3
# plugin, PostgreSQL's backends), for the "other CPU" figure.
measured_pids() { target_pids "$@"; } # for bench/lib.sh's measure_begin and measure_end
target_pids() {
	local roots=() p
	case $1 in
	cluster) roots=("${PID[nginx]}" "${PID[node1]}" "${PID[node2]}" "${PID[node3]}")
		[ -n "$PG_DIR" ] && roots+=("$(cat "$PG_DIR/postgres.pid")")
		[ -n "$MINIO_DIR" ] && roots+=("$(cat "$MINIO_DIR/minio.pid")") ;;
	single-lb) roots=("${PID[nginx]}" "${PID[single]}") ;;
	single) roots=("${PID[single]}") ;;
	single-s3) roots=("${PID[single-s3]}")
		[ -n "$MINIO_DIR" ] && roots+=("$(cat "$MINIO_DIR/minio.pid")") ;;
	esac
	for p in "${roots[@]}"; do echo "$p"; pgrep -P "$p" || true; done
}

# probe TARGET: PUT on the Kazoo route, GET back, DELETE under /dav/.
probe() {
	local t=$1 f=$RAW/probe.bin code
	head -c 1024 /dev/urandom >"$f"
	code=$(http_code -T "$f" "${BASE[$t]}/bench-probe-$STAMP/$t.bin")
	[[ $code == 2?? ]] || die "$t answered $code to a Kazoo PUT (logs in $RAW)"
	curl -sf -o "$RAW/probe.back" "${BASE[$t]}/bench-probe-$STAMP/$t.bin" && cmp -s "$f" "$RAW/probe.back" ||
		die "$t: GET did not return the bytes just PUT"
	code=$(http_code -X DELETE "${BASE[$t]}/dav/bench-probe-$STAMP/$t.bin")
	[[ $code == 2?? ]] || die "$t answered $code to DELETE /dav/...; the benchmark deletes its PUT data"
}

# --- measurements (pause, measure_*, parse_wrk: bench/lib.sh) -----------------------------------

step_put() { # ROUND TARGET
	local r=$1 t=$2 prefix="bench-put-$STAMP-r$1" out=$RAW/r$1-put-$2.txt code s0
	pause "$r" put "$t"
	measure_begin "$t"
	wrk "${WRK_FLAGS[@]}" -s "$BENCH/wrk.lua" "${BASE[$t]}/$prefix/" -- put "$PUT_SIZE" >"$out" 2>&1 || true
	measure_end "$r" put "$t"
	parse_wrk "$out" "$r" put "$t"
	s0=$SECONDS
	code=$(http_code --max-time 600 -X DELETE "${BASE[$t]}/dav/$prefix/")
	[[ $code == 2?? ]] || log "  DELETE $prefix/ on $t answered $code"
	[ $((SECONDS - s0)) -gt 5 ] && log "  DELETE $prefix/ on $t took $((SECONDS - s0)) s"
	return 0
}

GETFILE=
step_get() { # ROUND TARGET
	local r=$1 t=$2 path="bench-get/get-$STAMP-r$1-$2.bin" out=$RAW/r$1-get-$2.txt code
	code=$(http_code -T "$GETFILE" "${BASE[$t]}/$path")
	if ! [[ $code == 2?? ]] || ! curl -sf -o "$RAW/get-back.bin" "${BASE[$t]}/$path" || ! cmp -s "$GETFILE" "$RAW/get-back.bin"; then
		rec "$r" get "$t" valid 0
		rec "$r" get "$t" note "the 100 KiB file did not come back byte-exact (PUT answered $code)"
		log "  get $t: PUT answered $code or the file did not come back byte-exact: skipped"
		return
	fi
	pause "$r" get "$t"
	measure_begin "$t"
	wrk "${WRK_FLAGS[@]}" -s "$BENCH/wrk.lua" "${BASE[$t]}/$path" -- get >"$out" 2>&1 || true
	measure_end "$r" get "$t"
	parse_wrk "$out" "$r" get "$t"
}

# --- PostgreSQL round trips per PUT ------------------------------------------------------------

PGC_STATS=
# counters: one line "rfq stmts parse c2s s2c conns xacts pss" (pss empty without pg_stat_statements)
counters() {
	local p x s
	p=$(curl -sf "$PGC_STATS/") || die "pgcount stats unreachable"
	x=$(psql -X -t -A "$ADMIN_URL" -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$BENCH_DB'")
	s=
	[ "$PSS" = 1 ] && s=$(psql -X -t -A "$ADMIN_URL" -c "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '$BENCH_DB'")
	awk -v x="$x" -v s="$s" '{for(i=1;i<=NF;i++){split($i,a,"="); c[a[1]]=a[2]} print c["rfq"], c["query"]+c["execute"], c["parse"], c["c2s_bytes"], c["s2c_bytes"], c["conns"], x, s}' <<<"$p"
}
pss_snapshot() { # FILE: queryid, calls, query (one line)
	[ "$PSS" = 1 ] || return 0
	psql -X -t -A -F $'\t' "$ADMIN_URL" -c "SELECT s.queryid, s.calls, left(regexp_replace(s.query, '\s+', ' ', 'g'), 160) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '$BENCH_DB'" >"$1"
}

step_rt() {
	local port stats line c0 c1 c2 c3 t0 t1 t2 t3 bg puts=$RT_PUTS warm=30 i f=$RAW/rt-body.bin ok last now
	log "round trips: $puts sequential PUTs through the balancer, nodes' index via bench/pgcount"
	free_port
	port=$FREE_PORT
	free_port
	"$WORK/pgcount" -listen "127.0.0.1:$port" -to "$PG_HOSTPORT" -stats "127.0.0.1:$FREE_PORT" -delay "${PG_DELAY}ms" >"$RAW/pgcount.log" 2>&1 &
	PID[pgcount]=$!
	STARTED_PIDS+=("$!")
	PGC_STATS=http://127.0.0.1:$FREE_PORT
	for i in $(seq 100); do curl -sf -o /dev/null "$PGC_STATS/" && break; sleep 0.1; done
	restart_cluster "$(sed -E "s|@[^/]+/|@127.0.0.1:$port/|" <<<"$BENCH_DB_URL")"
	head -c "$PUT_SIZE" /dev/urandom >"$f"
	# One curl, one connection to nginx: -K file of upload-file/url pairs.
	for i in $(seq "$warm"); do printf 'upload-file = "%s"\nurl = "%s/bench-rt-%s/warm-%d.bin"\noutput = "/dev/null"\n' "$f" "${BASE[cluster]}" "$STAMP" "$i"; done >"$RAW/rt-warm.curl"
	for i in $(seq "$puts"); do printf 'upload-file = "%s"\nurl = "%s/bench-rt-%s/p-%d.bin"\noutput = "/dev/null"\n' "$f" "${BASE[cluster]}" "$STAMP" "$i"; done >"$RAW/rt-puts.curl"
	curl -s -K "$RAW/rt-warm.curl" -w '%{http_code}\n' >"$RAW/rt-warm.codes" || true
	[ "$(grep -c '^201$' "$RAW/rt-warm.codes")" = "$warm" ] || log "  warm-up PUTs: $(sort "$RAW/rt-warm.codes" | uniq -c | tr '\n' ' ')"
	# Let the warm-up settle (spool mode moves the bytes on in the background; an idle backend
	# may hold its pg_stat_database counts back for up to 10 s), then measure the idle
	# background for 10 s.
	sleep 12
	c0=$(counters); t0=$(date +%s.%N)
	sleep 10
	c1=$(counters); t1=$(date +%s.%N)
	pss_snapshot "$RAW/pss-before.tsv"
	curl -s -K "$RAW/rt-puts.curl" -w '%{http_code} %{time_total}\n' >"$RAW/rt-puts.codes" || true
	t2=$(date +%s.%N)
	# Settle: until the round-trip counter grows no faster than in the idle background (at most
	# 120 s; spool mode replicates after the answers), then 12 s: an idle backend reports its
	# transactions to pg_stat_database up to 10 s late.
	last=$(curl -sf "$PGC_STATS/" | sed -E 's/.*rfq=([0-9]+).*/\1/')
	bg=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" 'BEGIN{split(a,x," "); split(b,y," "); print (y[1]-x[1])/(t1-t0)}')
	for i in $(seq 60); do
		sleep 2
		now=$(curl -sf "$PGC_STATS/" | sed -E 's/.*rfq=([0-9]+).*/\1/')
		awk -v d=$((now - last)) -v bg="$bg" 'BEGIN{exit !(d <= 2 * bg * 1.5 + 2)}' && break
		last=$now
	done
	sleep 12
	c3=$(counters); t3=$(date +%s.%N)
	pss_snapshot "$RAW/pss-after.tsv"
	ok=$(grep -c '^201 ' "$RAW/rt-puts.codes" || true)
	printf '%s\n' "$c0" "$c1" "$c3" >"$RAW/rt-counters.txt"
	rtrec puts "$puts"
	rtrec warmup "$warm"
	rtrec all_201 "$([ "$ok" = "$puts" ] && echo yes || echo "**no: $(awk '{print $1}' "$RAW/rt-puts.codes" | sort | uniq -c | tr '\n' ' ')**")"
	rtrec put_ms "$(awk '{s+=$2} END{printf "%.2f", s/NR*1000}' "$RAW/rt-puts.codes")"
	rtrec pg_delay_ms "$PG_DELAY"
	rtrec bg_seconds "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
	rtrec window_seconds "$(awk -v a="$t1" -v b="$t3" 'BEGIN{printf "%.1f", b-a}')"
	rtrec settle_seconds "$(awk -v a="$t2" -v b="$t3" 'BEGIN{printf "%.1f", b-a}')"
	rtrec conns "$(awk '{print $6}' <<<"$c3")"
	# per counter: raw = c3 - c1, bg = (c1 - c0) / (t1 - t0) * (t3 - t1), net = raw - bg
	awk -v a="$c0" -v b="$c1" -v c="$c3" -v t0="$t0" -v t1="$t1" -v t3="$t3" 'BEGIN{
		n = split("rfq stmts parse c2s s2c conns xacts pss", name, " ")
		split(a, x, " "); split(b, y, " "); split(c, z, " ")
		for (i = 1; i <= n; i++) {
			if (name[i] == "conns") continue
			if (name[i] == "pss" && z[i] == "") { print "pss_note\tnot loaded in this PostgreSQL"; continue }
			raw = z[i] - y[i]; bg = (y[i] - x[i]) / (t1 - t0) * (t3 - t1)
			printf "%s\t%.0f\n%s_raw\t%d\n%s_bg\t%.0f\n", name[i], raw - bg, name[i], raw, name[i], bg
		}
	}' >>"$RAW/rt.tsv"
	if [ "$PSS" = 1 ]; then
		awk -F'\t' 'NR==FNR{b[$1]=$2; next} {d=$2-($1 in b ? b[$1] : 0); if (d > 0) {q=$3; gsub(/\|/, "\\|", q); gsub(/`/, "'"'"'", q); printf "%d\t%s\n", d, q}}' \
			"$RAW/pss-before.tsv" "$RAW/pss-after.tsv" | sort -t$'\t' -k1,1nr | head -n 20 >"$RAW/rt-statements.tsv"
	fi
	log "  round trips per PUT: $(awk -F'\t' -v n="$puts" '$1=="rfq"{printf "%.2f", $2/n}' "$RAW/rt.tsv"), statements $(awk -F'\t' -v n="$puts" '$1=="stmts"{printf "%.2f", $2/n}' "$RAW/rt.tsv"), transactions $(awk -F'\t' -v n="$puts" '$1=="xacts"{printf "%.2f", $2/n}' "$RAW/rt.tsv") ($ok/$puts PUTs 201)"
}

# --- main ---------------------------------------------------------------------------------------

T0=$(date +%s)
log "bench: rounds=$ROUNDS steps=${STEPS[*]} rt=${WANT[rt]:-0} targets=${TARGETS[*]} write_mode=$WRITE_MODE raw=$RAW"
install_missing
rm -rf "$DATA_ROOT" "$WORK/run" "$WORK/plugins"
mkdir -p "$DATA_ROOT" "$WORK/run" "$WORK/plugins"

src=$REPO
if [ -n "$ATTACHD_REV" ]; then
	commit=$(git -C "$REPO" rev-parse --verify --quiet "$ATTACHD_REV^{commit}") || die "--rev: no commit $ATTACHD_REV"
	src=$WORK/src
	rm -rf "$src"
	mkdir -p "$src"
	git -C "$REPO" archive "$commit" | tar -x -C "$src"
fi
log "building attachd, the plugins and bench/pgcount from $src"
build_attachd "$src" "$WORK/attachd" >"$RAW/build.log" 2>&1 || die "go build failed: $(tail -n 3 "$RAW/build.log")"
if [ "$NEED_S3" = 1 ]; then
	(cd "$src" && plugins/build.sh "$WORK/plugins") >>"$RAW/build.log" 2>&1 || die "plugins/build.sh failed: $(tail -n 3 "$RAW/build.log")"
	PLUGIN_SHA=$(sha256sum "$WORK/plugins/attachd-plugin-s3" | cut -d' ' -f1)
fi
(cd "$REPO" && go build -o "$WORK/pgcount" ./bench/pgcount) >>"$RAW/build.log" 2>&1 || die "building bench/pgcount failed"

meta date "$(date '+%F %T %Z')"
meta rounds "$ROUNDS"
meta steps "${STEPS[*]}$([ -n "${WANT[rt]:-}" ] && echo ' rt')"
meta targets "${TARGETS[*]}"
meta write_mode "$WRITE_MODE"
meta read_cache "${READ_CACHE:-default (1GiB)}"
meta machine "$(nproc) vCPU ($(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)), $(awk '/^MemTotal:/{printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
meta datafs "$(df -T "$DATA_ROOT" | awk 'NR==2{print $2" ("$1")"}') under $WORK"
if [ -n "$ATTACHD_REV" ]; then
	meta attachd "$(git -C "$REPO" rev-parse --short "$ATTACHD_REV^{commit}") (built from git archive of $ATTACHD_REV)"
else
	meta attachd "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no commit')$(git -C "$REPO" status --porcelain -- . ':!bench' 2>/dev/null | grep -q . && echo ' (work tree has uncommitted changes outside bench/)' || true)"
fi
meta raw "$RAW"

[ "$NEED_CLUSTER" = 1 ] && start_postgres
[ "$NEED_S3" = 1 ] && start_minio
[ "$NEED_CLUSTER" = 1 ] && start_cluster
[ "$NEED_SINGLE" = 1 ] && start_single
has_target single-s3 && [ ${#STEPS[@]} -gt 0 ] && start_single_s3
[ "$NEED_NGINX" = 1 ] && start_nginx
for t in "${TARGETS[@]}"; do [ ${#STEPS[@]} -gt 0 ] && probe "$t"; done
[ "$NEED_CLUSTER" = 1 ] && probe cluster

versions="nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (balancer: round-robin, keepalive 32, proxy_request_buffering off, proxy_buffering off); "
[ "$NEED_CLUSTER" = 1 ] && versions+="PostgreSQL $(awk -F'\t' '$1=="postgres"{print $2}' "$RAW/meta.tsv")$([ -n "$PG_DIR" ] && echo ' (.ci/postgres.sh: fsync=off, synchronous_commit=off, full_page_writes=off; pg_stat_statements loaded)'); "
[ "$NEED_S3" = 1 ] && versions+="MinIO $(awk -F'\t' '$1=="minio"{print $2}' "$RAW/meta.tsv") (.ci/minio.sh, one drive); "
meta versions "$versions$(dpkg-query -W -f='${Package} ${Version}; ' wrk curl 2>/dev/null)$(go version | awk '{print $3}')"
meta setup "3 nodes with their own data dir, \`[index] url\` = one fresh PostgreSQL database, \`[cluster] advertise_url\`/\`secret\`, \`[storage] backend = \"s3\"\`, \`write_mode = \"$WRITE_MODE\"\`, one fresh bucket (\`plugins/build.sh\` s3 plugin pinned by sha256, path-style); single: \`attachd serve --listen --data-dir\` with no config (SQLite index and bytes in the data dir, as in bench/run.sh); single-s3: the nodes' \`[storage]\`/\`[plugin.s3]\` tables, no \`[index]\` (SQLite), its own fresh bucket. Every node logs one access line per request to a file."

if [ ${#STEPS[@]} -gt 0 ]; then
	GETFILE=$RAW/get-100k.bin
	head -c "$PUT_SIZE" /dev/urandom >"$GETFILE"
	for r in $(seq "$ROUNDS"); do
		order=()
		for i in $(seq 0 $((${#TARGETS[@]} - 1))); do order+=("${TARGETS[$(((i + r - 1) % ${#TARGETS[@]}))]}"); done
		rec "$r" round - order "${order[*]}"
		log "round $r/$ROUNDS, order: ${order[*]}"
		for step in "${STEPS[@]}"; do
			for t in "${order[@]}"; do "step_$step" "$r" "$t"; done
		done
	done
fi
[ -n "${WANT[rt]:-}" ] && step_rt
meta elapsed "$(($(date +%s) - T0)) s"

mkdir -p "$(dirname "$RESULTS")"
render_report "$RAW" >"$RESULTS"
cp "$RESULTS" "$RAW/"
cat "$RESULTS"
log "table written to $RESULTS (raw outputs in $RAW); took $(($(date +%s) - T0)) s"
