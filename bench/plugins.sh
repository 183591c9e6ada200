#!/usr/bin/env bash
# bench/plugins.sh: throughput of a 1 GiB upload and download through each
# storage plugin (attachd-plugin-sftp, attachd-plugin-azblob) beside the same
# transfer done in-process by the plugin's own backend type against the same
# server, as a ratio (target >= 0.8), and the peak RSS of the host process
# and of the plugin during it (target <= 64 MiB each). Issue 4, Benchmarks.
#
#   bench/plugins.sh [--size BYTES] [--rounds N] [--only sftp,azblob] [--rev REV] [--diag]
#                    [--stream CHUNKS] [--profile]
#
#   --size BYTES   bytes each way (default 1073741824)
#   --rounds N     rounds (default 3); the table shows medians
#   --only LIST    plugins to measure: sftp, azblob, s3 (MinIO, .ci/minio.sh);
#                  default sftp,azblob
#   --rev REV      build from git revision REV (git archive into $WORK/src),
#                  not the work tree, e.g. while others are mid-edit; the
#                  benchmark files are taken from the work tree if REV lacks them
#   --diag         also run "in-process, chunked reads": the download read in
#                  plain 256 KiB Reads as the SDK's Read handler does (no
#                  WriterTo), to tell the read pattern from the gRPC hop
#   --stream CHUNKS  also run the plugin with descriptor passing off (every
#                  byte as gRPC chunks, as an older plugin), once per chunk
#                  size in the comma-separated list, e.g. 262144,1048576
#                  (default: 262144; "none" to skip)
#   --profile      CPU-profile the host process of each plugin-side
#                  measurement of round 1 (-test.cpuprofile) and write the
#                  top of each profile to bench/results/plugins-<date>-pprof.md
#
# It builds the plugins (plugins/build.sh) and the benchmark test binaries
# (plugins/{sftp,azblob}/bench_test.go, TestPluginBench), starts OpenSSH sshd
# (.ci/sshd.sh) and Azurite (.ci/azurite.sh) on 127.0.0.1, runs every
# measurement in a fresh process, stops the servers by their scripts, prints
# a table and writes it to bench/results/plugins-<date>.md. Raw outputs stay
# in $WORK/raw/<stamp>/ (WORK: $ATTACHD_PLUGINBENCH_WORK, default
# /tmp/attachd-pluginbench). Rounds alternate which side goes first. Azurite
# keeps blobs in memory, and its memory grows with every 1 GiB blob even once
# deleted, so it is restarted before each azblob measurement.
set -euo pipefail

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}
die() { echo "plugins.sh: $*" >&2; exit 1; }

SIZE=$((1 << 30))
ROUNDS=3
ONLY=sftp,azblob
REV=
DIAG=0
STREAM=262144
PROFILE=0
while [ $# -gt 0 ]; do
	case $1 in
	--size) [ $# -ge 2 ] || die "--size needs bytes"; SIZE=$2; shift ;;
	--size=*) SIZE=${1#*=} ;;
	--rounds) [ $# -ge 2 ] || die "--rounds needs a number"; ROUNDS=$2; shift ;;
	--rounds=*) ROUNDS=${1#*=} ;;
	--only) [ $# -ge 2 ] || die "--only needs a list"; ONLY=$2; shift ;;
	--only=*) ONLY=${1#*=} ;;
	--rev) [ $# -ge 2 ] || die "--rev needs a git revision"; REV=$2; shift ;;
	--rev=*) REV=${1#*=} ;;
	--diag) DIAG=1 ;;
	--stream) [ $# -ge 2 ] || die "--stream needs chunk sizes or none"; STREAM=$2; shift ;;
	--stream=*) STREAM=${1#*=} ;;
	--profile) PROFILE=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
	shift
done
[[ $SIZE =~ ^[1-9][0-9]*$ ]] || die "--size must be a positive number of bytes, got '$SIZE'"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, got '$ROUNDS'"
[ "$STREAM" = none ] && STREAM=
[[ -z $STREAM || $STREAM =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--stream must be chunk sizes in bytes, comma-separated, or none; got '$STREAM'"
IFS=, read -ra PLUGINS <<<"$ONLY"
for p in "${PLUGINS[@]}"; do
	case $p in sftp | azblob | s3) ;; *) die "--only: unknown plugin '$p' (sftp, azblob, s3)" ;; esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WORK=${ATTACHD_PLUGINBENCH_WORK:-/tmp/attachd-pluginbench}
STAMP=$(date +%Y%m%d-%H%M%S)
RAW=$WORK/raw/$STAMP
mkdir -p "$RAW" "$WORK/bin" "$WORK/spool"

started=()
cleanup() {
	local rc=$?
	for s in "${started[@]}"; do
		case $s in
		sshd) .ci/sshd.sh stop "$WORK/sshd" >&2 || true ;;
		azurite) .ci/azurite.sh stop "$WORK/azurite" >&2 || true ;;
		minio) .ci/minio.sh stop "$WORK/minio" >&2 || true ;;
		esac
	done
	rm -rf "$WORK/sshd/sftp-root/pluginbench"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== build" >&2
SRC=$ROOT
if [ -n "$REV" ]; then
	commit=$(git rev-parse --short "$REV^{commit}") || die "--rev: no such revision '$REV'"
	SRC=$WORK/src
	rm -rf "$SRC"
	mkdir -p "$SRC"
	git archive "$REV" | tar -x -C "$SRC"
	for f in bench/plugins.sh plugins/sftp/bench_test.go plugins/azblob/bench_test.go plugins/s3/bench_test.go; do
		[ -e "$SRC/$f" ] || cp "$ROOT/$f" "$SRC/$f"
	done
else
	commit=$(git rev-parse --short HEAD)
	git diff --quiet HEAD -- plugins server go.mod go.sum 2>/dev/null || commit="$commit + work tree (plugins/ or server/ modified)"
fi
rm -f "$WORK"/bin/*
(cd "$SRC" && plugins/build.sh "$WORK/bin") >"$RAW/build.txt"
for p in "${PLUGINS[@]}"; do
	(cd "$SRC" && CGO_ENABLED=0 go test -c -vet=off -trimpath -o "$WORK/bin/$p.test" "./plugins/$p")
done

echo "== servers" >&2
want() { [[ ",$ONLY," == *",$1,"* ]]; }
if want sftp; then
	started+=(sshd)
	.ci/sshd.sh start "$WORK/sshd" >&2
fi
if want azblob; then
	started+=(azurite)
	.ci/azurite.sh start "$WORK/azurite" >&2
fi
if want s3; then
	started+=(minio)
	.ci/minio.sh start "$WORK/minio" >&2
fi

envfile() { case $1 in sftp) echo "$WORK/sshd/env" ;; azblob) echo "$WORK/azurite/env" ;; s3) echo "$WORK/minio/env" ;; esac; }

# restart_azurite starts a fresh Azurite and waits until its port accepts
# connections.
restart_azurite() {
	.ci/azurite.sh stop "$WORK/azurite" >/dev/null
	.ci/azurite.sh start "$WORK/azurite" >/dev/null
	local url
	url=$(sed -n 's/^export ATTACHD_AZURITE_URL=http:\/\/\([^/]*\).*/\1/p' "$WORK/azurite/env")
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/${url%:*}/${url##*:}") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	die "Azurite does not accept connections on $url; log: $WORK/azurite/azurite.log"
}

# measure PLUGIN MODE LOG [PROFILE]: one measurement in a process of its
# own. MODE plugin-stream-N streams with chunks of N bytes.
measure() {
	local p=$1 mode=$2 log=$3 prof=${4:-} chunk=
	[ "$p" != azblob ] || restart_azurite
	case $mode in plugin-stream-*) chunk=${mode#plugin-stream-}; mode=plugin-stream ;; esac
	(
		. "$(envfile "$p")"
		ATTACHD_PLUGINBENCH=$mode ATTACHD_PLUGINBENCH_SIZE=$SIZE \
			ATTACHD_PLUGINBENCH_CHUNK=$chunk ATTACHD_PLUGINBENCH_SPOOL="$WORK/spool" \
			ATTACHD_PLUGINBENCH_DIR="$WORK/bin" \
			ATTACHD_PLUGINBENCH_SHA256="$(sha256sum "$WORK/bin/attachd-plugin-$p" | cut -d' ' -f1)" \
			"$WORK/bin/$p.test" -test.run '^TestPluginBench$' -test.count=1 -test.v -test.timeout 30m \
			${prof:+-test.cpuprofile "$prof"}
	) >"$log" 2>&1
}

# run PLUGIN MODE ROUND: measure, once more if the first attempt fails (the
# failed log is kept as *.failed), and append the PLUGINBENCH line (with
# round and load average) to results.txt.
run() {
	local p=$1 mode=$2 round=$3 log="$RAW/$1-$2-$3.log" load
	load=$(cut -d' ' -f1 /proc/loadavg)
	sync
	sleep 2
	echo "-- round $round: $p $mode (load $load)" >&2
	local prof=
	if [ "$PROFILE" = 1 ] && [ "$round" = 1 ] && [[ $mode == plugin* ]]; then prof=$RAW/$p-$mode.cpu.pprof; fi
	if ! measure "$p" "$mode" "$log" "$prof"; then
		mv "$log" "$log.failed"
		[ "$p" != azblob ] || cp "$WORK/azurite/azurite.log" "$log.azurite.failed"
		echo "   failed (log: $log.failed); once more" >&2
		if ! measure "$p" "$mode" "$log" "$prof"; then
			tail -30 "$log" >&2
			die "$p $mode failed twice; log: $log"
		fi
	fi
	local line
	line=$(grep '^PLUGINBENCH ' "$log") || die "$p $mode: no result line; log: $log"
	line=${line#PLUGINBENCH }
	echo "${line/mode=plugin-stream /mode=$mode } round=$round load=$load" | tee -a "$RAW/results.txt" >&2
}

echo "== measure: $ROUNDS round(s) of $SIZE bytes" >&2
for round in $(seq "$ROUNDS"); do
	for p in "${PLUGINS[@]}"; do
		modes=(inproc plugin)
		IFS=, read -ra chunks <<<"$STREAM"
		for c in "${chunks[@]}"; do modes+=("plugin-stream-$c"); done
		[ "$DIAG" = 0 ] || modes+=(inproc-chunked)
		# Even rounds run the sides in the opposite order.
		if [ $((round % 2)) = 0 ]; then mapfile -t modes < <(printf '%s\n' "${modes[@]}" | tac); fi
		for mode in "${modes[@]}"; do run "$p" "$mode" "$round"; done
	done
done

# The table: medians over the rounds, ratios of the medians, the largest
# peak RSS seen in any round, median CPU seconds.
table() {
	awk -v rounds="$ROUNDS" -v size="$SIZE" '
	function med(list,   a, n, i, j, t) {
		n = split(list, a, " ")
		if (n == 0) return 0
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function mib(k) { return sprintf("%.1f", k / 1024) }
	function big(a, k, v) { if (v != "" && (!(k in a) || v + 0 > a[k] + 0)) a[k] = v }
	{
		delete f
		for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		p = f["plugin"]; m = f["mode"]; k = p SUBSEP m; r = f["round"]
		if (!(p in seen)) { seen[p] = 1; order[++np] = p }
		if (!(m in mseen)) { mseen[m] = 1; modes[++nm] = m }
		has[k] = 1
		for (ph = 0; ph < 2; ph++) {
			x = ph ? "down" : "up"
			mbs[k, x] = mbs[k, x] " " f[x "_mbs"]; per[k, x, r] = f[x "_mbs"]
			cpu[k, x] = cpu[k, x] " " (f["host_" x "_cpu_s"] + f["plugin_" x "_cpu_s"])
			big(hwm, k SUBSEP "host" SUBSEP x, f["host_" x "_hwm_kib"])
			big(hwm, k SUBSEP "plugin" SUBSEP x, f["plugin_" x "_hwm_kib"])
			big(base, k SUBSEP "host", f["host_" x "_base_kib"])
			big(base, k SUBSEP "plugin", f["plugin_" x "_base_kib"])
		}
		loads = loads " " f["load"]
	}
	END {
		name["inproc"] = "in-process"; name["plugin"] = "through the plugin (descriptors)"; name["inproc-chunked"] = "in-process, chunked reads (diagnostic)"
		for (j = 1; j <= nm; j++) if (modes[j] ~ /^plugin-stream-/) name[modes[j]] = sprintf("through the plugin, gRPC chunks of %d KiB", substr(modes[j], 15) / 1024)
		printf "%d round(s) of %d bytes (%.0f MiB) each way. MB/s = 10^6 bytes/s, median of the rounds. Peak RSS = largest VmHWM of any round, MiB, upload / download; resting = VmRSS just before. CPU = median user+system seconds of host + plugin process (servers not counted).\n\n", rounds, size, size / 1048576
		print "| plugin | path | upload MB/s | download MB/s | host peak RSS | plugin peak RSS | resting RSS host, plugin | CPU s up / down |"
		print "|---|---|---:|---:|---:|---:|---:|---:|"
		for (i = 1; i <= np; i++) {
			p = order[i]
			for (j = 1; j <= nm; j++) {
				k = p SUBSEP modes[j]
				if (!(k in has)) continue
				pl = modes[j] ~ /^plugin/
				printf "| %s | %s | %.1f | %.1f | %s / %s | %s | %s, %s | %.1f / %.1f |\n", p, name[modes[j]], med(mbs[k, "up"]), med(mbs[k, "down"]), \
					mib(hwm[k, "host", "up"]), mib(hwm[k, "host", "down"]), \
					pl ? mib(hwm[k, "plugin", "up"]) " / " mib(hwm[k, "plugin", "down"]) : "-", \
					mib(base[k, "host"]), pl ? mib(base[k, "plugin"]) : "-", med(cpu[k, "up"]), med(cpu[k, "down"])
			}
		}
		print ""
		print "| plugin | path | upload ratio plugin / in-process | download ratio | per round (up, down) | targets: ratio >= 0.8, peak RSS <= 64 MiB |"
		print "|---|---|---:|---:|---|---|"
		for (i = 1; i <= np; i++) {
			p = order[i]; ki = p SUBSEP "inproc"
			for (j = 1; j <= nm; j++) {
				if (modes[j] !~ /^plugin/) continue
				kp = p SUBSEP modes[j]
				if (!(ki in has) || !(kp in has)) continue
				ru = med(mbs[kp, "up"]) / med(mbs[ki, "up"]); rd = med(mbs[kp, "down"]) / med(mbs[ki, "down"])
				rr = ""
				for (r = 1; r <= rounds; r++) rr = rr sprintf("%s%.2f, %.2f", r > 1 ? "; " : "", per[kp, "up", r] / per[ki, "up", r], per[kp, "down", r] / per[ki, "down", r])
				v = ""
				if (ru < 0.8) v = v " upload ratio < 0.8;"
				if (rd < 0.8) v = v " download ratio < 0.8;"
				for (x = 0; x < 2; x++) {
					ph = x ? "down" : "up"
					if (hwm[kp, "host", ph] > 65536 || hwm[ki, "host", ph] > 65536) hostover = 1
					if (hwm[kp, "plugin", ph] > 65536) plugover = 1
				}
				if (hostover) v = v " host RSS > 64 MiB;"
				if (plugover) v = v " plugin RSS > 64 MiB;"
				hostover = plugover = 0
				printf "| %s | %s | %.2f | %.2f | %s | %s |\n", p, name[modes[j]], ru, rd, rr, v == "" ? "met" : "missed:" v
			}
		}
		printf "\n1-minute load average before each measurement (the benchmark counts too, and other users of the machine):%s\n", loads
	}' "$RAW/results.txt"
}

date=$(date +%Y-%m-%d)
out=bench/results/plugins-$date.md
n=2
while [ -e "$out" ]; do out=bench/results/plugins-$date-$n.md; n=$((n + 1)); done
{
	echo "# Storage plugins vs in-process: $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "\`bench/plugins.sh --size $SIZE --rounds $ROUNDS --only $ONLY${REV:+ --rev $REV}$([ "$DIAG" = 0 ] || echo ' --diag')\` at $commit; $(go version | cut -d' ' -f3);"
	echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem/ {print $2}') GiB RAM;"
	echo "$(/usr/sbin/sshd -V 2>&1 | head -1), Azurite $(sed -n 's/.*"version": "\([^"]*\)".*/\1/p' .ci/azurite/node_modules/azurite/package.json 2>/dev/null | head -1) (in-memory)."
	echo
	echo "Each side runs in a fresh process: *in-process* is the plugin's own backend type, configured"
	echo "by its own Configure, called directly; *through the plugin* is the real binary from"
	echo "plugins/build.sh, started by plugins/host.New (hash pinned) and called through Manager.Backend."
	echo "Both upload a spooled file as attachd's store does (blob.CopyFile: a plugin that takes"
	echo "descriptors reads the file itself, anything else gets 1 MiB Writes; the file is written before"
	echo "the clock starts) and read the blob back whole (io.CopyBuffer, 256 KiB; through a pipe the"
	echo "plugin writes into, or as gRPC chunks with descriptor passing off), SHA-256-checked."
	echo "*Host* is the benchmark process (attachd's side),"
	echo "*plugin* the plugin process (PID from Manager.Status); peak RSS is VmHWM after"
	echo "\`echo 5 > /proc/PID/clear_refs\` just before each transfer."
	echo
	table
	echo
	echo "Raw lines: \`$RAW/results.txt\`."
} >"$out"
cat "$out"
echo "written: $out" >&2

if [ "$PROFILE" = 1 ]; then
	pout=${out%.md}-pprof.md
	{
		echo "# CPU profiles of the host process: $(date '+%Y-%m-%d %H:%M')"
		echo
		echo "From \`bench/plugins.sh --profile\` (results: \`$(basename "$out")\`): round 1 of each"
		echo "plugin-side measurement, the benchmark process (attachd's side of the plugin"
		echo "connection) profiled with -test.cpuprofile over upload and download together"
		echo "(the spool file's writing, untimed, included). \`go tool pprof -top\`, by flat time."
		for prof in "$RAW"/*.cpu.pprof; do
			[ -e "$prof" ] || continue
			b=$(basename "$prof" .cpu.pprof)
			echo
			echo "## ${b%%-*}: ${b#*-}"
			echo
			echo '```'
			go tool pprof -top -nodecount=25 "$WORK/bin/${b%%-*}.test" "$prof" 2>/dev/null | sed -n '/^Showing\|^Duration\|flat%/,$p' | head -40
			echo '```'
		done
	} >"$pout"
	echo "written: $pout" >&2
fi
