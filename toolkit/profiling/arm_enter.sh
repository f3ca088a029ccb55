#!/bin/sh
# Run one command inside the arm64 rootfs, as aarch64 code under QEMU user-mode emulation, in a private mount
# namespace.
#
# usage: arm_enter.sh ROOTFS CPUINFO|- [HOSTPATH:GUESTPATH ...] -- COMMAND [ARG ...]
#
# Why a chroot and not `qemu-aarch64 -L ROOTFS`: -L only redirects the paths that exist under ROOTFS and falls
# back to the host for the rest (the host's x86 /proc/cpuinfo, /tmp, /etc), and the venv's python is a symlink
# to /usr/bin/python3, which -L cannot follow into the rootfs. In a chroot the runner sees one aarch64 system.
# Every aarch64 program is started by binfmt_misc with qemu-user-static's entry, whose F flag makes the kernel
# hold the static interpreter open, so nothing of the host is needed inside the rootfs. The dynamically linked
# qemu-aarch64, the only one that loads TCG plugins, is offered at /opt/meltoolkit/qemu-aarch64 together with
# the host's x86-64 libraries, to be started through /opt/meltoolkit/x86-64/ld-linux-x86-64.so.2 (its own
# PT_INTERP, /lib64/..., cannot live in an arm64 rootfs: usr-is-merged deletes /lib64).
# CPUINFO is bind-mounted over /proc/cpuinfo: onnxruntime's cpuinfo library crashes on the host's x86 text.
# Every mount lives in the namespace and disappears with the command; the rootfs only gains empty mount points.
set -eu

binfmt=/proc/sys/fs/binfmt_misc
if [ "${MELTOOLKIT_ARM_NS:-}" != 1 ]; then
    grep -q ':[A-Z]*F[A-Z]*$' /usr/lib/binfmt.d/qemu-aarch64.conf \
        || { echo "arm_enter: qemu-aarch64's binfmt entry lacks the F flag: run 'make ci-deps'" >&2; exit 1; }
    [ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt"
    # an entry without F (qemu-user-binfmt's) is replaced; a concurrent registration may win the race: fine
    if [ -e "$binfmt/qemu-aarch64" ] && ! grep -q '^flags: .*F' "$binfmt/qemu-aarch64"; then
        echo -1 > "$binfmt/qemu-aarch64" 2>/dev/null || true
    fi
    [ -e "$binfmt/qemu-aarch64" ] || cat /usr/lib/binfmt.d/qemu-aarch64.conf > "$binfmt/register" 2>/dev/null \
        || grep -q '^flags: .*F' "$binfmt/qemu-aarch64"
    MELTOOLKIT_ARM_NS=1 exec unshare --mount --propagation private -- sh "$0" "$@"
fi
unset MELTOOLKIT_ARM_NS

rootfs=$1
cpuinfo=$2
shift 2

bind() {  # bind HOSTPATH GUESTPATH: a file or a folder, its mount point made when missing
    if [ -d "$1" ]; then mkdir -p "$rootfs$2"; else mkdir -p "$(dirname "$rootfs$2")"; [ -e "$rootfs$2" ] || : > "$rootfs$2"; fi
    mount --bind "$1" "$rootfs$2"
}

mount -t proc proc "$rootfs/proc"
[ "$cpuinfo" = - ] || mount --bind "$cpuinfo" "$rootfs/proc/cpuinfo"
bind /sys /sys
bind /dev /dev
bind /usr/lib/x86_64-linux-gnu /opt/meltoolkit/x86-64
bind /usr/bin/qemu-aarch64 /opt/meltoolkit/qemu-aarch64

while [ "$1" != -- ]; do
    bind "${1%%:*}" "${1#*:}"
    shift
done
shift
exec chroot "$rootfs" "$@"
