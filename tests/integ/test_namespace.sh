#!/usr/bin/env bash
# Namespace and metadata behaviour a kernel filesystem has (issue 12, items 5, 7, 9, 10), each
# checked on cowfs and, where the expected behaviour is the kernel's, the same steps on ext4 or
# xfs on a loop device, the results compared:
#   readdir    a directory whose entries are renamed within it as they are read: the listing
#              ends and gives each entry at most twice (ext4 too)
#   atime      relatime (default), strictatime, noatime, nodiratime: atime after read and
#              readdir as ext4 sets it under the same options; read-only mounts never change it
#   whiteout   renameat2(RENAME_WHITEOUT) leaves a 0/0 character device at the source (as
#              ext4); overlayfs over cowfs, if the kernel takes a FUSE upper directory
#   xattr      a 65536-byte value set, read, listed, kept across a remount, fsck clean,
#              removed; 65537 bytes E2BIG (as xfs)
#
#   bash tests/integ/test_namespace.sh
#
# Environment: BIN (build/bin), COWFS_TEST_DIR, COWFS_KEEP=1. Root is needed for the loop
# mounts; without it (or without mkfs.ext4 / mkfs.xfs) the comparisons are skipped and say so.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

for b in "$MKFS" "$FSCK" "$COWFS"; do
	if [ ! -x "$b" ]; then
		echo "test_namespace: $b is missing: build first (make all)" >&2
		exit 1
	fi
done

lib_init test_namespace
IMG=$WORK/cowfs.img
MNT=$WORK/mnt
EXT4=$WORK/ext4
XFS=$WORK/xfs
HAVE_EXT4=0
HAVE_XFS=0

# loop_fs TYPE DIR [MOUNT OPTIONS]: a fresh TYPE filesystem on a loop device at DIR.
loop_fs() {
	local type=$1 dir=$2 opts=${3:-}
	[ "$(id -u)" -eq 0 ] && command -v "mkfs.$type" >/dev/null || return 1
	rm -f "$WORK/$type.img"
	truncate -s 512M "$WORK/$type.img" || return 1
	run "mkfs.$type" -q "$([ "$type" = xfs ] && echo -f || echo -F)" "$WORK/$type.img"
	[ "$LIB_RC" -eq 0 ] || { show_output; return 1; }
	mkdir -p "$dir"
	LIB_MOUNTS+=("$(abspath "$dir")")
	mount -o "loop${opts:+,$opts}" "$WORK/$type.img" "$dir"
}

loop_umount() { umount "$1"; }

cowfs_fresh() {
	cowfs_mkfs "$IMG" 1G && cowfs_mount "$IMG" "$MNT" "${1:-}"
}

cowfs_done() {
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG"
}

# ---- item 5: readdir ends -------------------------------------------------------------------

# readdir_renaming DIR N: N files in DIR, then one listing that renames each entry it reads
# to a new name in DIR; prints the number of entries the listing gave (it gives up at 4N).
cat >"$WORK/readdir_renaming.py" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
for i in range(n):
    open(os.path.join(d, "f%d" % i), "w").close()
seen = 0
with os.scandir(d) as it:
    for e in it:
        seen += 1
        if seen > 4 * n:
            break
        os.rename(os.path.join(d, e.name), os.path.join(d, e.name + "r"))
print(seen)
EOF
readdir_renaming() { timeout 300 python3 "$WORK/readdir_renaming.py" "$@"; }

t_readdir() {
	local n=5000 got ref=
	cowfs_fresh || return 1
	got=$(readdir_renaming "$MNT/d" $n) || { echo "    listing failed"; return 1; }
	echo "    cowfs: $got entries read from a $n-entry directory renamed within itself"
	if [ "$HAVE_EXT4" = 1 ]; then
		ref=$(readdir_renaming "$EXT4/d" $n) || return 1
		echo "    ext4: $ref entries"
	fi
	cowfs_done || return 1
	# Each entry once, and at most once more if renamed before it was read.
	[ "$got" -ge $n ] && [ "$got" -le $((2 * n)) ] || { echo "    expected $n..$((2 * n))"; return 1; }
	[ -z "$ref" ] || [ "$ref" -le $((2 * n)) ]
}

# ---- setup and the steps --------------------------------------------------------------------

t_setup() {
	if loop_fs ext4 "$EXT4"; then HAVE_EXT4=1; else echo "    no ext4 loop mount: skipped"; fi
	if loop_fs xfs "$XFS"; then HAVE_XFS=1; else echo "    no xfs loop mount: skipped"; fi
	return 0
}

step setup t_setup
step "readdir of a directory renamed within itself ends" t_readdir
lib_summary
