#!/usr/bin/env bash
# Installs a package built by packaging/build-deb.sh on this machine, checks
# what it installed, runs it as its user once, and purges it: the machine is
# left as it was. Needs root; ./test.sh runs it.
#
#   packaging/test-deb.sh DEB
set -euo pipefail
deb=${1:?usage: packaging/test-deb.sh DEB}
cd "$(dirname "$0")/.."
. .ci/lib.sh

fail() {
	echo "test-deb: $*" >&2
	exit 1
}
check() { # check WHAT GOT WANT
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}
if dpkg -s attachd >/dev/null 2>&1; then
	fail "attachd is installed on this machine already: not touching it"
fi
if getent passwd attachd >/dev/null || [ -e /var/lib/attachd ]; then
	fail "a user attachd or /var/lib/attachd exists already: not touching them"
fi
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
	dpkg --purge attachd >/dev/null 2>&1 || true
	rm -rf /var/lib/attachd
	if getent passwd attachd >/dev/null; then userdel attachd; fi
	if getent group attachd >/dev/null; then groupdel attachd; fi
}
trap cleanup EXIT

dpkg -i "$deb" >/dev/null

# The binary, with the version the package was built as.
want_version=$(dpkg-deb -f "$deb" Version)
case $(attachd --version) in
"attachd version $want_version (commit "*) ;;
*) fail "attachd --version: $(attachd --version); want version $want_version and a commit" ;;
esac

# The plugins, each pinned by the configuration to the file installed.
for p in azblob exec s3 sftp webhook; do
	f=/usr/lib/attachd/plugins/attachd-plugin-$p
	[ -x "$f" ] || fail "$f missing"
	grep -q "^sha256 = \"$(sha256sum "$f" | cut -d' ' -f1)\"" /etc/attachd/attachd.toml ||
		fail "/etc/attachd/attachd.toml does not pin $f"
done

# The configuration: a conffile, readable by attachd and no one else.
check "conffiles" "$(dpkg-query -W -f='${Conffiles}' attachd | awk '{print $1}')" /etc/attachd/attachd.toml
check "/etc/attachd/attachd.toml" "$(stat -c '%U:%G %a' /etc/attachd/attachd.toml)" "root:attachd 640"
check "/etc/attachd" "$(stat -c '%U:%G %a' /etc/attachd)" "root:attachd 750"
runuser -u attachd -- attachd check-config --config /etc/attachd/attachd.toml >/dev/null

# The user: a system account with no shell, at home in the data directory.
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd attachd)
[ "$uid" -lt 1000 ] || fail "attachd's uid $uid is not a system one"
check "attachd's home" "$home" /var/lib/attachd
check "attachd's shell" "$shell" /usr/sbin/nologin
check "/var/lib/attachd" "$(stat -c '%U:%G %a' /var/lib/attachd)" "attachd:attachd 750"

# The man page and the completions.
check "man -w attachd" "$(man -w attachd)" /usr/share/man/man8/attachd.8.gz
for f in /usr/share/bash-completion/completions/attachd /usr/share/zsh/vendor-completions/_attachd \
	/usr/share/fish/vendor_completions.d/attachd.fish; do
	[ -s "$f" ] || fail "$f missing"
done

# The unit: systemd-analyze exits 0 on unknown keys and bad values, and says
# so on stderr: any word from it is a failure.
unit=/usr/lib/systemd/system/attachd.service
verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify $unit: $verify"

# It runs as its user with the configuration installed (the listen address
# aside: the default port may be taken here), and answers its health check.
port=$(free_port)
# setpriv execs attachd (runuser would stay between, and die of the SIGTERM).
setpriv --reuid attachd --regid attachd --init-groups \
	attachd serve --config /etc/attachd/attachd.toml --listen "127.0.0.1:$port" 2>/tmp/attachd-test-deb.log &
pid=$!
for _ in $(seq 100); do
	attachd healthcheck --url "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { cat /tmp/attachd-test-deb.log >&2; fail "attachd serve exited"; }
	sleep 0.2
done
attachd healthcheck --url "http://127.0.0.1:$port/readyz" || { cat /tmp/attachd-test-deb.log >&2; fail "never ready"; }
kill -TERM "$pid"
wait "$pid" || fail "attachd serve exited $? on SIGTERM"
pid=
rm -f /tmp/attachd-test-deb.log
[ -e /var/lib/attachd/index.db ] || fail "attachd serve left no index in /var/lib/attachd"

# Purging keeps what was stored, and the user owning it.
dpkg --purge attachd >/dev/null 2>&1
[ ! -e /usr/bin/attachd ] && [ ! -e /etc/attachd ] || fail "purge left /usr/bin/attachd or /etc/attachd"
[ -e /var/lib/attachd/index.db ] || fail "purge deleted the data in /var/lib/attachd"
getent passwd attachd >/dev/null || fail "purge removed the user owning /var/lib/attachd"
rm -rf /var/lib/attachd

# With nothing stored, it removes the user and the directory too.
dpkg -i "$deb" >/dev/null
dpkg --purge attachd >/dev/null
if getent passwd attachd >/dev/null || getent group attachd >/dev/null || [ -e /var/lib/attachd ]; then
	fail "purge with nothing stored left the user, the group or /var/lib/attachd"
fi
echo "test-deb: $deb installs, runs and purges cleanly"
