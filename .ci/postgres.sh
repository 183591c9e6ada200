#!/usr/bin/env bash
# A throwaway PostgreSQL on a free loopback port, for the PostgreSQL index
# tests (server/index/pg).
#
#   .ci/postgres.sh start DIR   installs Debian's postgresql if needed; the
#                               cluster, its socket, log and env in DIR
#   .ci/postgres.sh stop DIR    stops the PostgreSQL started in DIR, by its PID
#
# `. DIR/env` exports ATTACHD_TEST_PG_URL: role attachd (a random password,
# allowed to create databases, as the tests do) on its database attachd. As
# root the server runs as the postgres user, which is given DIR; otherwise
# as the caller.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1 dir=$2

# pg_bin prints the newest installed PostgreSQL's bin folder, if any.
pg_bin() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

# install_postgres installs Debian's postgresql without starting its own
# cluster: policy-rc.d refuses the service start the package asks for.
install_postgres() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "postgres.sh: PostgreSQL is not installed; need root to install it (or: sudo apt-get install postgresql)" >&2
		exit 1
	fi
	echo "installing postgresql" >&2
	local policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
	fi
	local rc=0
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || rc=$?
	if [ -n "$policy" ]; then rm -f "$policy"; fi
	return $rc
}

# as_pg runs a command as the user the server runs as.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

case $cmd in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ -f "$dir/postgres.pid" ] && kill -0 "$(cat "$dir/postgres.pid")" 2>/dev/null; then
		echo "PostgreSQL already running in $dir (pid $(cat "$dir/postgres.pid"))" >&2
		exit 1
	fi
	bin=$(pg_bin) || { install_postgres && bin=$(pg_bin); } || {
		echo "postgres.sh: no initdb under /usr/lib/postgresql/*/bin" >&2
		exit 1
	}
	if [ "$(id -u)" -eq 0 ]; then
		# The postgres user must reach DIR: mktemp -d makes its folders 0700.
		# Search permission (x) on the folders above is enough.
		d=$(dirname "$dir")
		while [ "$d" != / ]; do
			runuser -u postgres -- test -x "$d" || chmod a+x "$d"
			d=$(dirname "$d")
		done
		chown -R postgres: "$dir"
	fi
	rm -rf "$dir/data" "$dir/env"
	# Local (socket) connections are trusted: the socket sits in DIR, which
	# only the server's user (and root) can enter. TCP needs the password.
	as_pg "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C -N \
		--auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 || {
		echo "initdb failed; its log:" >&2
		cat "$dir/initdb.log" >&2
		exit 1
	}
	chmod 700 "$dir"
	port=$(free_port)
	# A throwaway cluster: durability is traded for speed.
	if ! as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 -s \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
		start; then
		echo "PostgreSQL did not start; its log:" >&2
		cat "$dir/postgres.log" >&2
		exit 1
	fi
	head -n 1 "$dir/data/postmaster.pid" >"$dir/postgres.pid"
	pw=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	as_pg "$bin/psql" -q -X -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres <<-SQL
		CREATE ROLE attachd LOGIN CREATEDB PASSWORD '$pw';
		CREATE DATABASE attachd OWNER attachd;
	SQL
	cat >"$dir/env" <<-ENV
		export ATTACHD_TEST_PG_URL='postgres://attachd:$pw@127.0.0.1:$port/attachd?sslmode=disable'
	ENV
	echo "PostgreSQL listening on 127.0.0.1:$port (pid $(cat "$dir/postgres.pid")); . $dir/env"
	;;
stop)
	# SIGINT is the fast shutdown: clients are disconnected, not waited for.
	stop_pid PostgreSQL "$dir" postgres INT 300
	;;
*) usage ;;
esac
