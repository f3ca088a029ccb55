#!/bin/sh
# Build QEMU's insn and howvec TCG plugins for the installed qemu-user, from Debian's source package of the
# same version (Debian ships qemu-aarch64 able to load plugins, but no plugins). howvec gets one patch that
# splits its catch-all "Scalar FP" class into AdvSIMD vector / AdvSIMD scalar / scalar FP and adds an
# FP/SIMD load-store class, the instruction mix the predictor needs. plugins/x86class.c (ours) classes the x86-64
# host's own instructions the same way, for holding predictions against this host's measurements.
#
# usage: qemu_plugins.sh [OUTDIR]   (default $MELTOOLKIT_CACHE/qemu-plugins, MELTOOLKIT_CACHE=/var/cache/meltoolkit)
# Writes OUTDIR/libinsn.so, OUTDIR/libhowvec.so, OUTDIR/libx86class.so and OUTDIR/stamp (the qemu-user version they were built for).
# The source is fetched with a private apt configuration (deb-src lines derived from the host's own sources), so
# the host's apt setup is left untouched.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-${MELTOOLKIT_CACHE:-/var/cache/meltoolkit}/qemu-plugins}
version=$(dpkg-query -W -f '${Version}' qemu-user)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$version" ] && [ -f "$out/libinsn.so" ] \
    && [ -f "$out/libhowvec.so" ] && [ -f "$out/libx86class.so" ] \
    && [ ! "$here/plugins/x86class.c" -nt "$out/libx86class.so" ]; then
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
tar -xJf "$work"/qemu_*.orig.tar.* -C "$work" --strip-components=1 --wildcards \
    '*/tests/plugin/insn.c' '*/contrib/plugins/howvec.c' '*/include/qemu/qemu-plugin.h'
patch --quiet -d "$work" -p1 < "$here/plugins/howvec-split-fpsimd.patch"

mkdir -p "$out"
cp "$here/plugins/x86class.c" "$work/x86class.c"
for source in tests/plugin/insn.c contrib/plugins/howvec.c x86class.c; do
    name=$(basename "$source" .c)
    # shellcheck disable=SC2046
    gcc -shared -fPIC -O2 -I "$work/include/qemu" $(pkg-config --cflags glib-2.0) "$work/$source" \
        -o "$out/lib$name.so.tmp" $(pkg-config --libs glib-2.0)
    mv "$out/lib$name.so.tmp" "$out/lib$name.so"
done
echo "$version" > "$out/stamp"
echo "qemu plugins: built libinsn.so, libhowvec.so and libx86class.so in $out for qemu-user $version" >&2
