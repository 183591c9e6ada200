#!/usr/bin/env bash
# A throwaway OpenSSH sshd on a free loopback port, for the SFTP plugin tests.
#
#   .ci/sshd.sh start DIR   keys, config and sftp root in DIR; writes DIR/env
#   .ci/sshd.sh stop DIR    stops the sshd started in DIR, by its PID
#
# `. DIR/env` exports ATTACHD_SFTP_ADDR, _USER, _KEY (client private key
# file), _HOST_KEY (server public key file) and _ROOT (remote folder).
# Needs Debian's openssh-server (not started by its package: no systemd).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1 dir=$2

case $cmd in
start)
	mkdir -p "$dir/sftp-root"
	dir=$(cd "$dir" && pwd)
	if [ -f "$dir/sshd.pid" ] && kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null; then
		echo "sshd already running in $dir (pid $(cat "$dir/sshd.pid"))" >&2
		exit 1
	fi
	rm -f "$dir/host_key" "$dir/host_key.pub" "$dir/client_key" "$dir/client_key.pub"
	ssh-keygen -q -t ed25519 -N '' -C attachd-ci-host -f "$dir/host_key"
	ssh-keygen -q -t ed25519 -N '' -C attachd-ci-client -f "$dir/client_key"
	cp "$dir/client_key.pub" "$dir/authorized_keys"
	# sshd ignores a group- or world-readable host key and exits.
	chmod 600 "$dir/host_key" "$dir/client_key" "$dir/authorized_keys"
	port=$(free_port)
	# StrictModes no: DIR may sit under /tmp, which is world-writable.
	# PidFile in DIR: the default /run/sshd.pid belongs to a system sshd.
	cat >"$dir/sshd_config" <<-CONF
		ListenAddress 127.0.0.1
		Port $port
		HostKey $dir/host_key
		PidFile $dir/sshd-own.pid
		AuthorizedKeysFile $dir/authorized_keys
		StrictModes no
		UsePAM no
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		PubkeyAuthentication yes
		PermitRootLogin prohibit-password
		AllowTcpForwarding no
		X11Forwarding no
		Subsystem sftp internal-sftp
	CONF
	# As root, sshd wants its privilege-separation folder (/run is a tmpfs).
	if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd; fi
	# sshd re-executes itself, which needs an absolute path.
	sshd=$(command -v sshd || echo /usr/sbin/sshd)
	"$sshd" -t -f "$dir/sshd_config"
	"$sshd" -D -e -f "$dir/sshd_config" </dev/null >"$dir/sshd.log" 2>&1 &
	echo $! >"$dir/sshd.pid"
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			cat >"$dir/env" <<-ENV
				export ATTACHD_SFTP_ADDR=127.0.0.1:$port
				export ATTACHD_SFTP_USER=$(id -un)
				export ATTACHD_SFTP_KEY=$dir/client_key
				export ATTACHD_SFTP_HOST_KEY=$dir/host_key.pub
				export ATTACHD_SFTP_ROOT=$dir/sftp-root
			ENV
			echo "sshd listening on 127.0.0.1:$port (pid $(cat "$dir/sshd.pid")); . $dir/env"
			exit 0
		fi
		if ! kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null; then break; fi
		sleep 0.1
	done
	echo "sshd did not start; its log:" >&2
	cat "$dir/sshd.log" >&2
	exit 1
	;;
stop)
	stop_pid sshd "$dir" sshd TERM 100
	;;
*) usage ;;
esac
