# bench/lib.sh: what bench/run.sh, bench/cluster.sh and bench/cpu.sh share, sourced by them. The
# sourcing script sets RAW (its raw-output dir) and TSV (its results file) before calling these,
# and defines die MESSAGE and measured_pids TARGET (the pids whose CPU time is the server's).

log() { printf '%s %s\n' "$(date +%T)" "$*" | tee -a "$RAW/run.log" >&2; }
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TSV"; } # round step target key value

# apt_install PACKAGE...: installs the packages, running apt-get update only when the package
# lists cannot serve the install as they are. Keeps the packages' postinst from starting a system
# nginx or apache2 on :80 (a no-op where no init runs).
apt_install() {
	[ $# -eq 0 ] && return
	log "installing: $*"
	local policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >"$RAW/apt.log" 2>&1 ||
		{ log "install failed with the current package lists: apt-get update, then again" &&
			apt-get update >>"$RAW/apt.log" 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$RAW/apt.log" 2>&1; } ||
		{ [ -n "$policy" ] && rm -f /usr/sbin/policy-rc.d; die "apt-get install failed, see $RAW/apt.log"; }
	[ -n "$policy" ] && rm -f /usr/sbin/policy-rc.d
	return 0
}

declare -A USED_PORTS=()
FREE_PORT=
free_port() { # sets FREE_PORT (not echoed: a $(subshell) would lose USED_PORTS)
	local p i
	for i in $(seq 500); do
		p=$((20000 + RANDOM % 40000))
		[ -n "${USED_PORTS[$p]:-}" ] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			USED_PORTS[$p]=1
			FREE_PORT=$p
			return
		fi
	done
	die "no free port found"
}

# build_attachd SRC OUT: builds attachd from the source tree SRC into OUT as the Debian package and
# the Docker image build it (static: CGO_ENABLED=0, -trimpath, stripped), so that the benchmarks
# measure the binary operators run. A default build links the C library when a C compiler is
# present: in bench/run.sh's 1 GiB upload that was 2.7 MiB more peak RSS (37.4 vs 34.7 MiB).
# grpcnotrace drops golang.org/x/net/trace, which gRPC would link and attachd never uses.
build_attachd() { (cd "$1" && CGO_ENABLED=0 go build -tags grpcnotrace -trimpath -buildvcs=false -ldflags "-s -w" -o "$2" .); }

http_code() { curl -s -o /dev/null -w '%{http_code}' "$@" || true; }

# pause ROUND STEP TARGET: sync, then 2 s of quiet.  The share of CPU that was busy during those
# 2 s is recorded: nothing of ours runs then, so a high figure means something else on the
# machine (a build, a test run) is competing with the measurement that follows.  With
# --wait-quiet S (WAIT_QUIET) it repeats the 2 s (for up to S seconds) while more than 15 % was
# busy.
cpu_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
pause() {
	local b0 t0 b1 t1 busy waited=0
	while :; do
		sync
		read -r b0 t0 < <(cpu_jiffies)
		sleep 2
		read -r b1 t1 < <(cpu_jiffies)
		busy=$(((b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1)))
		[ "$busy" -le 15 ] || [ "$waited" -ge "$WAIT_QUIET" ] && break
		[ "$waited" = 0 ] && log "  $busy % of the CPUs busy before $2 $3: waiting up to ${WAIT_QUIET} s for a quiet machine"
		waited=$((waited + 2))
	done
	rec "$1" "$2" "$3" idle_busy_pct "$busy"
	[ "$waited" = 0 ] || rec "$1" "$2" "$3" waited_s "$waited"
}

# measure_begin TARGET / measure_end ROUND STEP TARGET: the share of the machine's CPU that
# neither the target (measured_pids) nor the load generator (wrk, hyperfine, curl: this shell's
# reaped children) used during the measurement.  Kernel threads count as other (disk
# write-back, so on disk a few % is expected); loopback softirq time is left out.
CPU_M=0 CPU_T=0 CPU_OURS=0
cpu_sample() { # TARGET: sets CPU_M (machine busy), CPU_T (all), CPU_OURS, in 1/100 s
	local p c t
	read -r CPU_M CPU_T < <(awk '/^cpu /{print $2+$3+$4, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
	CPU_OURS=0
	for p in $(measured_pids "$1"); do
		c=$(awk '{print $14+$15+$16+$17}' "/proc/$p/stat" 2>/dev/null || echo 0)
		CPU_OURS=$((CPU_OURS + ${c:-0}))
	done
	times >"$RAW/.times" # second line: user and system time of this shell's reaped children
	t=$(awk 'NR==2{n=0; for(i=1;i<=2;i++){split($i,a,"m"); sub("s","",a[2]); n+=a[1]*60+a[2]} printf "%d", n*100}' "$RAW/.times")
	CPU_OURS=$((CPU_OURS + t))
}
declare -a CPU_START=()
measure_begin() { cpu_sample "$1"; CPU_START=("$CPU_M" "$CPU_T" "$CPU_OURS"); }
measure_end() {
	local other
	cpu_sample "$3"
	other=$(((CPU_M - CPU_START[0]) - (CPU_OURS - CPU_START[2])))
	[ "$other" -lt 0 ] && other=0
	rec "$1" "$2" "$3" other_cpu_pct $((other * 100 / (CPU_T - CPU_START[1] > 0 ? CPU_T - CPU_START[1] : 1)))
}

# parse_wrk FILE ROUND STEP TARGET: record the RESULT/STATUS lines of bench/wrk.lua; a run with any
# non-2xx status or socket error (or no result) is invalid.
parse_wrk() {
	local out=$1 r=$2 step=$3 t=$4 line kv statuses non2xx sockerr requests
	line=$(grep '^RESULT ' "$out" | tail -n 1 || true)
	statuses=$(awk '/^STATUS /{printf "%s%sx%s", sep, $2, $3; sep=","}' "$out")
	rec "$r" "$step" "$t" statuses "${statuses:--}"
	if [ -z "$line" ]; then
		rec "$r" "$step" "$t" valid 0
		rec "$r" "$step" "$t" note "wrk gave no result: $(tail -n 1 "$out")"
		return
	fi
	for kv in ${line#RESULT }; do rec "$r" "$step" "$t" "${kv%%=*}" "${kv#*=}"; done
	non2xx=$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$line")
	sockerr=$(sed -n 's/.* sockerr=\([0-9]*\).*/\1/p' <<<"$line")
	requests=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$line")
	if [ "$non2xx" = 0 ] && [ "$sockerr" = 0 ] && [ "${requests:-0}" -gt 0 ]; then
		rec "$r" "$step" "$t" valid 1
	else
		rec "$r" "$step" "$t" valid 0
		rec "$r" "$step" "$t" note "statuses $statuses; $(grep '^ERRORS ' "$out")"
	fi
	log "  $step $t: $(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$line") req/s, statuses $statuses, socket errors $sockerr"
}
