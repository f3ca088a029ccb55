#!/bin/sh
# Build the arm64 Debian bookworm rootfs that stands in for a Raspberry Pi: minbase, python3, and a venv at
# /opt/venv holding the real aarch64 wheels of numpy, onnxruntime, ai-edge-litert and openvino (its ARM CPU
# plugin). Cached outside the repo, reused while its stamp matches, rebuilt when missing or stale; one build at a
# time (a lock beside the rootfs: two builders would share one .partial folder).
#
# usage: arm_rootfs.sh [ROOTFS]   (default $MELTOOLKIT_CACHE/arm64-rootfs, MELTOOLKIT_CACHE=/var/cache/meltoolkit)
# env:   PIP, the host pip that downloads the wheels (default: python3 -m pip)
#
# The wheels are downloaded on the host for the board's platform and installed offline in the chroot: pip
# inside the chroot would need the host's CA bundle and network setup, and offline install pins exactly what
# was downloaded. The build happens in ROOTFS.partial and is renamed into place, so a failed build never
# leaves a rootfs that looks ready.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cache=${MELTOOLKIT_CACHE:-/var/cache/meltoolkit}
rootfs=${1:-$cache/arm64-rootfs}
wheels=$cache/wheels-aarch64
pip=${PIP:-python3 -m pip}
suite=bookworm
requirements="numpy==2.4.6 onnxruntime==1.32.0 ai-edge-litert==2.3.0 openvino==2026.4.1"
stamp="suite=$suite packages=python3,python3-venv wheels=$requirements"

mkdir -p "$(dirname "$rootfs")"
exec 9>"$rootfs.lock"
flock 9

if [ -f "$rootfs/.meltoolkit-stamp" ] && [ "$(cat "$rootfs/.meltoolkit-stamp")" = "$stamp" ]; then
    echo "arm64 rootfs: reusing $rootfs" >&2
    exit 0
fi

for tool in debootstrap qemu-aarch64 unshare; do
    command -v "$tool" >/dev/null || { echo "arm64 rootfs: $tool is missing: run 'make ci-deps'" >&2; exit 1; }
done

start=$(date +%s)
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' | awk -v s="$suite" '$2 == s {print $1; exit}')
[ -n "$mirror" ] || { echo "arm64 rootfs: no apt source for $suite on this host" >&2; exit 1; }

echo "arm64 rootfs: downloading aarch64 wheels into $wheels" >&2
mkdir -p "$wheels"
# shellcheck disable=SC2086
$pip download --quiet --dest "$wheels" --only-binary=:all: --implementation cp --python-version 3.11 \
    --platform manylinux_2_35_aarch64 --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64 \
    --platform manylinux2014_aarch64 $requirements

partial=$rootfs.partial
rm -rf "$partial"
mkdir -p "$(dirname "$rootfs")"
echo "arm64 rootfs: debootstrap first stage into $partial" >&2
debootstrap --arch=arm64 --foreign --variant=minbase --include=python3,python3-venv "$suite" "$partial" "$mirror" \
    >"$partial.log" 2>&1 || { tail -20 "$partial.log" >&2; exit 1; }
echo "arm64 rootfs: second stage under qemu-aarch64" >&2
"$here/arm_enter.sh" "$partial" - -- /debootstrap/debootstrap --second-stage >>"$partial.log" 2>&1 \
    || { tail -20 "$partial.log" >&2; exit 1; }
echo "arm64 rootfs: venv with $requirements" >&2
# shellcheck disable=SC2086
"$here/arm_enter.sh" "$partial" - "$wheels:/wheels" -- /bin/sh -c \
    "python3 -m venv /opt/venv && /opt/venv/bin/pip install --quiet --no-index --find-links /wheels $requirements"
rm -rf "$partial/var/cache/apt/archives/"*.deb "$partial/var/lib/apt/lists/"* "$partial.log"
echo "$stamp" > "$partial/.meltoolkit-stamp"
rm -rf "$rootfs"
mv "$partial" "$rootfs"
echo "arm64 rootfs: built $rootfs in $(( $(date +%s) - start )) s, $(du -sm "$rootfs" | cut -f1) MB" >&2
