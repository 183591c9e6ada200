#!/bin/sh
# Prints the configuration the Debian package and the container image ship as
# /etc/attachd/attachd.toml: where they put the data and the plugins, and a
# pin for each plugin they ship, so that enabling one is a matter of naming it
# in [storage] backend or hooks and configuring it.
#
#   packaging/config.sh LISTEN PLUGINS_DIR BUILT_PLUGINS_DIR
#
# LISTEN is the listen address; PLUGINS_DIR is where the plugins are
# installed; BUILT_PLUGINS_DIR holds the same files now, to hash.
set -eu
listen=${1:?usage: packaging/config.sh LISTEN PLUGINS_DIR BUILT_PLUGINS_DIR}
plugins=${2:?usage: packaging/config.sh LISTEN PLUGINS_DIR BUILT_PLUGINS_DIR}
built=${3:?usage: packaging/config.sh LISTEN PLUGINS_DIR BUILT_PLUGINS_DIR}

cat <<TOML
# attachd configuration (man attachd; every key, with its default and what it
# does: /usr/share/doc/attachd/attachd.example.toml). Check it with:
#   attachd check-config --config /etc/attachd/attachd.toml

# A non-loopback address needs [[users]] (or allow_anonymous = true).
listen = "$listen"
data_dir = "/var/lib/attachd"

# [[users]]
# name = "kazoo"
# password_hash = "…"       # printf 'secret' | attachd hash-password
# permissions = "rw"

[plugins]
dir = "$plugins"

# The plugins shipped beside attachd, pinned to the files shipped. A plugin
# runs only once [storage] backend or hooks names it (docs/plugins.md);
# after an upgrade that changed one you use, pin it again:
#   attachd plugins hash $plugins/attachd-plugin-NAME
TOML
found=
for f in "$built"/attachd-plugin-*; do
	[ -f "$f" ] || continue
	found=1
	name=${f##*/attachd-plugin-}
	sum=$(sha256sum "$f" | cut -d' ' -f1)
	printf '\n[plugin.%s]\nsha256 = "%s"\n' "$name" "$sum"
done
if [ -z "$found" ]; then
	echo "packaging/config.sh: no attachd-plugin-* in $built" >&2
	exit 1
fi
