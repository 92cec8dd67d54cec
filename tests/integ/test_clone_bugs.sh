#!/usr/bin/env bash
# The OpenZFS 2.2 block-cloning bug class, byte for byte, through the preload shim with
# unmodified programs (cp --reflink=always, xfs_io), each case run on cowfs and on xfs on a loop
# device and compared:
#   - write, then clone at once (nothing committed yet), read both;
#   - clone, then overwrite the source, read both;
#   - dirty the source through a shared mmap (pages the server has not seen), then clone;
#   - SEEK_DATA/SEEK_HOLE over a clone of just-written data with holes;
# and on cowfs only, the crash cases: clone then kill -9 before the commit, and after it (SYNC),
# remount, read both; fsck clean after each.
#
#   bash tests/integ/test_clone_bugs.sh
#
# Environment: BIN (build/bin), COWFS_TEST_DIR, COWFS_PRELOAD (default
# BIN/../lib/libcowfs-preload.so).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

lib_init test_clone_bugs
PRELOAD=${COWFS_PRELOAD:-$(abspath "$BIN/../lib/libcowfs-preload.so")}
IMG=$WORK/cowfs.img
MNT=$WORK/mnt
XFS_MNT=$WORK/xfs

t_xfs_setup() { loop_fs xfs "$XFS_MNT"; }

# A program on a directory: through the shim (it changes nothing off cowfs, so both get it).
shim() { LD_PRELOAD=$PRELOAD "$@"; }

head -c $((1 << 20)) /dev/urandom >"$WORK/data1m"
head -c $((3 << 20)) /dev/urandom >"$WORK/data3m"

# Each case: CASE DIR prints what it read (checksums, seek offsets); the two outputs must be
# equal and each case checks its own expectations.
case_write_then_clone() {
	local d=$1
	cp "$WORK/data1m" "$d/w.src" || return 1
	shim cp --reflink=always "$d/w.src" "$d/w.dst" || return 1
	cmp "$WORK/data1m" "$d/w.src" && cmp "$WORK/data1m" "$d/w.dst" || return 1
	md5sum <"$d/w.dst"
}

case_clone_then_overwrite() {
	local d=$1
	cp "$WORK/data1m" "$d/o.src" || return 1
	shim cp --reflink=always "$d/o.src" "$d/o.dst" || return 1
	dd if="$WORK/data3m" of="$d/o.src" bs=4096 seek=3 count=5 conv=notrunc status=none || return 1
	dd if="$WORK/data3m" of="$d/o.src" bs=1 seek=100000 count=17 conv=notrunc status=none || return 1
	cmp "$WORK/data1m" "$d/o.dst" || { echo "    the clone changed with its source"; return 1; }
	md5sum <"$d/o.src"
	md5sum <"$d/o.dst"
}

# The kernel writes a file's dirty mmap pages back before a clone reads it (on cowfs the shim
# has to, since the kernel never sees the clone): the clone must have the mmap'd bytes.
case_mmap_dirty_then_clone() {
	local d=$1
	cp "$WORK/data1m" "$d/m.src" || return 1
	shim xfs_io -c "open $d/m.src" -c "mmap -rw 0 1m" -c "mwrite -S 0xcd 4096 65536" \
		-c "open -f $d/m.dst" -c "reflink $d/m.src 0 0 1m" -c "close" -c "close" >/dev/null || return 1
	cmp "$d/m.src" "$d/m.dst" || { echo "    the clone lacks the mmap'd bytes"; return 1; }
	[ "$(od -An -tx1 -j 4096 -N 1 "$d/m.dst" | tr -d ' ')" = cd ] || { echo "    no 0xcd at 4096"; return 1; }
	md5sum <"$d/m.dst"
}

case_seek_over_clone() {
	local d=$1
	rm -f "$d/s.src"
	xfs_io -f -c "pwrite -q -S 0x11 0 64k" -c "pwrite -q -S 0x22 1m 64k" -c "pwrite -q -S 0x33 2m 4k" \
		"$d/s.src" || return 1
	shim cp --reflink=always "$d/s.src" "$d/s.dst" || return 1
	cmp "$d/s.src" "$d/s.dst" || return 1
	xfs_io -c "seek -a -r 0" "$d/s.dst"
}

CASES="write_then_clone clone_then_overwrite mmap_dirty_then_clone seek_over_clone"

t_case() {   # NAME: on both, outputs equal
	local c=$1 out_x out_c
	mkdir -p "$MNT/$c" "$XFS_MNT/$c"
	out_x=$("case_$c" "$XFS_MNT/$c") || { echo "    xfs: the case failed"; return 1; }
	out_c=$("case_$c" "$MNT/$c") || { echo "    cowfs: the case failed"; return 1; }
	if [ "$out_x" != "$out_c" ]; then
		echo "    outputs differ:"
		diff <(echo "$out_x") <(echo "$out_c") | sed 's/^/    /'
		return 1
	fi
}

# kill -9 right after a clone (nothing committed since the source was synced), remount: the
# source intact, the clone either absent/empty (not committed) or whole; then again with
# COWFS_IOC_SYNC (`cowfs sync`) between clone and kill: the clone is there, whole.
t_kill_after_clone() {
	local synced=$1
	mkdir -p "$MNT/k" || return 1
	cp "$WORK/data3m" "$MNT/k/src" || return 1
	"$COWFS" sync "$MNT" >/dev/null || return 1
	shim cp --reflink=always "$MNT/k/src" "$MNT/k/dst" || return 1
	[ "$synced" = synced ] && { "$COWFS" sync "$MNT" >/dev/null || return 1; }
	cowfs_kill_remount "$IMG" "$MNT" || return 1
	cmp "$WORK/data3m" "$MNT/k/src" || { echo "    the source is not intact"; return 1; }
	if [ "$synced" = synced ]; then
		cmp "$WORK/data3m" "$MNT/k/dst" || { echo "    the synced clone is not whole"; return 1; }
	elif [ -e "$MNT/k/dst" ] && [ -s "$MNT/k/dst" ]; then
		cmp "$WORK/data3m" "$MNT/k/dst" || { echo "    a half clone survived the crash"; return 1; }
	fi
	rm -rf "$MNT/k"
}

# The same through `cowfs reflink`, with the mapping still held by another process.
t_mmap_dirty_cli() {
	cp "$WORK/data1m" "$MNT/mc.src" || return 1
	python3 - "$MNT/mc.src" "$MNT/mc.dst" "$COWFS" <<-'EOF'
		import mmap, os, subprocess, sys
		src, dst, cowfs = sys.argv[1:4]
		fd = os.open(src, os.O_RDWR)
		m = mmap.mmap(fd, 1 << 20)
		m[8192:8192 + 65536] = b"\xcd" * 65536
		subprocess.run([cowfs, "reflink", src, dst], check=True, stdout=subprocess.DEVNULL)
		with open(dst, "rb") as f:
		    data = f.read()
		m.close()
		os.close(fd)
		sys.exit(0 if data[8192:8192 + 65536] == b"\xcd" * 65536 else 1)
	EOF
	[ $? -eq 0 ] || { echo "    the clone lacks the mmap'd bytes"; return 1; }
	cmp "$MNT/mc.src" "$MNT/mc.dst"
}

[ -e "$PRELOAD" ] || { echo "test_clone_bugs: $PRELOAD not built" >&2; exit 1; }
step "xfs on a loop device" t_xfs_setup || { lib_summary; exit 1; }
step "mkfs.cowfs" cowfs_mkfs "$IMG" 1G || { lib_summary; exit 1; }
if step "mount" cowfs_mount "$IMG" "$MNT"; then
	for c in $CASES; do
		step "${c//_/ } (cowfs = xfs)" t_case "$c"
	done
	step "mmap dirty, then cowfs reflink while still mapped: the clone has the bytes" t_mmap_dirty_cli
	step "clone, kill -9 before the commit, remount: source intact, clone none or whole" \
		t_kill_after_clone unsynced
	step "clone, cowfs sync, kill -9, remount: both whole" t_kill_after_clone synced
	step "unmount" cowfs_umount "$MNT" "$IMG"
fi
step "fsck.cowfs at the end" run_fsck "$IMG"
lib_summary
