#!/usr/bin/env bash
# Azurite (Azure Blob emulator, pinned in .ci/azurite/package-lock.json) on
# a free loopback port, for the azblob plugin tests.
#
#   .ci/azurite.sh start DIR   installs Azurite if needed; log and env in DIR
#   .ci/azurite.sh stop DIR    stops the Azurite started in DIR, by its PID
#
# `. DIR/env` exports ATTACHD_AZURITE_URL (the account's blob endpoint),
# ATTACHD_AZURITE_ACCOUNT and ATTACHD_AZURITE_KEY (the well-known dev key).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1 dir=$2
here=$(cd "$(dirname "$0")" && pwd)

case $cmd in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ -f "$dir/azurite.pid" ] && kill -0 "$(cat "$dir/azurite.pid")" 2>/dev/null; then
		echo "Azurite already running in $dir (pid $(cat "$dir/azurite.pid"))" >&2
		exit 1
	fi
	if [ ! -x "$here/azurite/node_modules/.bin/azurite-blob" ]; then
		(cd "$here/azurite" && npm ci --no-audit --no-fund --ignore-scripts)
	fi
	# Run the script itself, not npx: killing npx would orphan node.
	# --skipApiVersionCheck: azblob v1.8.3 sends an API version newer than
	# 3.35.0 knows. --blobPort 0 picks a free port, read back from the log.
	"$here/azurite/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort 0 \
		--inMemoryPersistence --skipApiVersionCheck --disableTelemetry \
		</dev/null >"$dir/azurite.log" 2>&1 &
	echo $! >"$dir/azurite.pid"
	for _ in $(seq 300); do
		port=$(sed -n 's/.*successfully listens on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/azurite.log" | head -1)
		if [ -n "$port" ]; then
			cat >"$dir/env" <<-ENV
				export ATTACHD_AZURITE_URL=http://127.0.0.1:$port/devstoreaccount1
				export ATTACHD_AZURITE_ACCOUNT=devstoreaccount1
				export ATTACHD_AZURITE_KEY=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==
			ENV
			echo "Azurite listening on 127.0.0.1:$port (pid $(cat "$dir/azurite.pid")); . $dir/env"
			exit 0
		fi
		if ! kill -0 "$(cat "$dir/azurite.pid")" 2>/dev/null; then break; fi
		sleep 0.1
	done
	echo "Azurite did not start; its log:" >&2
	cat "$dir/azurite.log" >&2
	exit 1
	;;
stop)
	# Azurite can take ~3 s to exit; wait, so its port is free for a restart.
	stop_pid Azurite "$dir" azurite TERM 150
	;;
*) usage ;;
esac
