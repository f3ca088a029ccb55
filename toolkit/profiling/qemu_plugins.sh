#!/bin/sh
# Build the toolkit's TCG plugin, plugins/insnclass.c (executed instructions by pipe class, per guest thread,
# between the runner's marks; aarch64 and x86_64 guests), for the installed qemu-user. Debian ships qemu-aarch64
# and qemu-x86_64 able to load plugins but not the plugin API header, so qemu-plugin.h is taken from Debian's
# source package of the same version.
#
# usage: qemu_plugins.sh [OUTDIR]   (default $MELTOOLKIT_CACHE/qemu-plugins, MELTOOLKIT_CACHE=/var/cache/meltoolkit)
# Writes OUTDIR/libinsnclass.so and OUTDIR/stamp (the qemu-user version it was built for).
# The source is fetched with a private apt configuration (deb-src lines derived from the host's own sources), so
# the host's apt setup is left untouched.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-${MELTOOLKIT_CACHE:-/var/cache/meltoolkit}/qemu-plugins}
version=$(dpkg-query -W -f '${Version}' qemu-user)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$version" ] && [ -f "$out/libinsnclass.so" ] \
    && [ ! "$here/plugins/insnclass.c" -nt "$out/libinsnclass.so" ]; then
    echo "qemu plugins: reusing $out" >&2
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(TARGET_OF)' \
    | awk '$3 == "deb" {print "deb-src", $1, $2, "main"}' | sort -u > "$work/sources.list"
mkdir -p "$work/lists/partial"
apt_private="-o Dir::Etc::SourceList=$work/sources.list -o Dir::Etc::SourceParts=/nonexistent \
    -o Dir::State::Lists=$work/lists -o APT::Sandbox::User=root"
# the binary version may carry a binNMU suffix (+b3) that its source version does not
# shellcheck disable=SC2086
apt-get -qq $apt_private update
# shellcheck disable=SC2086
(cd "$work" && apt-get -qq $apt_private source --download-only "qemu=${version%+b[0-9]*}" >/dev/null)
tar -xJf "$work"/qemu_*.orig.tar.* -C "$work" --strip-components=1 --wildcards '*/include/qemu/qemu-plugin.h'

mkdir -p "$out"
# shellcheck disable=SC2046
gcc -shared -fPIC -O2 -Wall -Werror -I "$work/include/qemu" $(pkg-config --cflags glib-2.0) \
    "$here/plugins/insnclass.c" -o "$out/libinsnclass.so.tmp" $(pkg-config --libs glib-2.0)
mv "$out/libinsnclass.so.tmp" "$out/libinsnclass.so"
echo "$version" > "$out/stamp"
echo "qemu plugins: built libinsnclass.so in $out for qemu-user $version" >&2
