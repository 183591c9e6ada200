# .ci/lib.sh: what the scripts that start throwaway servers share. Source it.

# free_port picks a loopback port nothing listens on: sshd, PostgreSQL and
# MinIO cannot listen on port 0 and report the port, so probe instead.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "no free port found" >&2
	return 1
}

# stop_pid NAME DIR BASE SIGNAL TENTHS stops the server whose PID is in
# DIR/BASE.pid: SIGNAL, then up to TENTHS tenths of a second for it to exit
# (so that its port is free for a restart), then SIGKILL; DIR/env goes too.
stop_pid() {
	local name=$1 dir=$2 base=$3 sig=$4 tenths=$5 pid
	[ -f "$dir/$base.pid" ] || { echo "no $base.pid in $dir" >&2; return 0; }
	pid=$(cat "$dir/$base.pid")
	kill "-$sig" "$pid" 2>/dev/null || true
	for _ in $(seq "$tenths"); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" || true; fi
	rm -f "$dir/$base.pid" "$dir/env"
	echo "$name stopped (pid $pid)"
}
