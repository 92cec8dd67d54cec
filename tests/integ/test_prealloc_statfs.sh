#!/usr/bin/env bash
# Issue 12, items 2 and 3: the fallocate promise and an exact statfs, compared with btrfs on a
# loop device where the behaviour is the kernel's:
#   - statfs's f_bavail is exactly what a fallocate can take: f_bavail blocks succeed on a
#     fresh 4 GiB image, one block more fails with ENOSPC;
#   - df -i shows inode figures as btrfs does for its dynamic inodes (f_files = f_ffree = 0),
#     never a percentage of a made-up total;
#   - a write into preallocated space takes no new space (2 bytes fallocated across a block
#     boundary, then written: st_blocks as on btrfs) and never fails with ENOSPC, even with
#     the filesystem full, and a clone of a preallocated range keeps that promise for both.
#
#   bash tests/integ/test_prealloc_statfs.sh
#
# Environment: BIN (build/bin), COWFS_TEST_DIR.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

lib_init test_prealloc_statfs
IMG=$WORK/cowfs.img
MNT=$WORK/mnt
BT_MNT=$WORK/btrfs

t_btrfs_setup() { loop_fs btrfs "$BT_MNT"; }

bavail() { stat -f -c %a "$1"; }
bsize() { stat -f -c %S "$1"; }

# fallocate of f_bavail + 1 blocks fails with ENOSPC, of f_bavail blocks succeeds.
t_bavail_exact() {
	local f=$MNT/big avail bs out
	: >"$f" && sync "$f" || return 1
	avail=$(bavail "$MNT")
	bs=$(bsize "$MNT")
	echo "    f_bavail $avail blocks of $bs"
	if out=$(fallocate -l $(((avail + 1) * bs)) "$f" 2>&1); then
		echo "    fallocate of f_bavail + 1 block succeeded"
		return 1
	fi
	case $out in
	*"No space left"*) ;;
	*) echo "    fallocate of f_bavail + 1 block: $out (not ENOSPC)"; return 1 ;;
	esac
	[ "$(bavail "$MNT")" -eq "$avail" ] || { echo "    f_bavail moved: $(bavail "$MNT")"; return 1; }
	if ! out=$(fallocate -l $((avail * bs)) "$f" 2>&1); then
		echo "    fallocate of f_bavail ($((avail * bs)) bytes) failed: $out"
		return 1
	fi
	[ "$(stat -c %s "$f")" -eq $((avail * bs)) ] || return 1
	echo "    f_bavail after: $(bavail "$MNT")"
}

# The figures df -i prints for a directory: "Inodes IUsed IFree IUse%".
df_inodes() { df -i "$1" | awk 'END { print $2, $3, $4, $5 }'; }

t_df_inodes() {
	local d got want
	for d in "$MNT" "$BT_MNT"; do
		mkdir -p "$d/many" || return 1
		for i in $(seq 20); do : >"$d/many/f$i" || return 1; done
	done
	got=$(df_inodes "$MNT")
	want=$(df_inodes "$BT_MNT")
	echo "    cowfs: $got; btrfs: $want"
	[ "$got" = "$want" ] || return 1
	[ "$(stat -f -c '%c %d' "$MNT")" = "$(stat -f -c '%c %d' "$BT_MNT")" ]
}

# Allocated bytes of a file after fallocating 2 bytes across a block boundary and writing them.
falloc_write_blocks() {
	local f=$1/straddle
	rm -f "$f"
	fallocate -o 4095 -l 2 "$f" || return 1
	printf 'ab' | dd of="$f" bs=1 seek=4095 conv=notrunc status=none || return 1
	# Before the data is written back, and after.
	echo -n "$(($(stat -c %b "$f") * $(stat -c %B "$f"))) "
	sync "$f" && sync "$1"
	echo $(($(stat -c %b "$f") * $(stat -c %B "$f")))
}

t_falloc_write_in_place() {
	local got want
	got=$(falloc_write_blocks "$MNT") || return 1
	want=$(falloc_write_blocks "$BT_MNT") || return 1
	echo "    allocated before and after write-back: cowfs $got bytes, btrfs $want bytes"
	[ "$got" = "$want" ] || return 1
	[ "$(od -An -c -j 4095 -N 2 "$MNT/straddle" | tr -d ' ')" = ab ]
}

# On a full filesystem (f_bavail fallocated), writing the whole preallocated file succeeds.
t_full_write_prealloc() {
	local f=$MNT/big size out
	size=$(stat -c %s "$f")
	if ! out=$(dd if=/dev/urandom of="$f" bs=1M count=$((size >> 20)) conv=notrunc,fsync \
		status=none 2>&1); then
		echo "    writing the preallocated file: $out"
		return 1
	fi
	sync "$MNT"
	echo "    wrote $size bytes into preallocated space; f_bavail now $(bavail "$MNT")"
}

# Deleting works on the full filesystem.
t_full_delete() {
	rm -f "$MNT/big" && sync "$MNT" && [ "$(bavail "$MNT")" -gt 0 ]
}

# A clone of a preallocated range, then the space filled: both files take writes over all of it.
t_clone_prealloc_full() {
	local a=$MNT/pa b=$MNT/pb avail bs out
	fallocate -l 64M "$a" || return 1
	"$BIN/cowfs" reflink "$a" "$b" >/dev/null || return 1
	sync "$a"
	avail=$(bavail "$MNT")
	bs=$(bsize "$MNT")
	fallocate -l $((avail * bs)) "$MNT/filler" || { echo "    filler"; return 1; }
	for f in "$a" "$b"; do
		if ! out=$(dd if=/dev/urandom of="$f" bs=1M count=64 conv=notrunc,fsync status=none 2>&1); then
			echo "    write into $f: $out"
			return 1
		fi
	done
	cmp -s "$a" "$b" && { echo "    both files the same after different writes"; return 1; }
	rm -f "$MNT/filler" "$a" "$b"
}

# Scattered 4 KiB writes into preallocated space on a full filesystem, fsynced as they go, read
# back equal (the map's pieces come from the reserve: inplace.c); 4,000 pages of a 256 MiB file.
t_scattered_prealloc_full() {
	local f=$MNT/scatter avail bs
	fallocate -l 256M "$f" || return 1
	sync "$f"
	avail=$(bavail "$MNT")
	bs=$(bsize "$MNT")
	fallocate -l $((avail * bs)) "$MNT/filler" || { echo "    filler"; return 1; }
	python3 - "$f" <<'PY'
import os, random, sys
random.seed(12)
fd = os.open(sys.argv[1], os.O_RDWR)
pages = random.sample(range(256 * 256), 4000)
data = {}
for n, p in enumerate(pages):
    b = random.randbytes(4096)
    os.pwrite(fd, b, p * 4096)
    data[p] = b
    if n % 500 == 499:
        os.fsync(fd)
os.fsync(fd)
for p, b in data.items():
    if os.pread(fd, 4096, p * 4096) != b:
        sys.exit("page %d reads back different" % p)
z = bytes(4096)
for p in random.sample(range(256 * 256), 200):
    if p not in data and os.pread(fd, 4096, p * 4096) != z:
        sys.exit("unwritten page %d is not zeros" % p)
PY
	local ret=$?
	rm -f "$MNT/filler" "$f"
	return $ret
}

# Scattered writes into preallocated space, fsynced through the fsync log (commit=600: no commit
# between), then kill -9: fsck clean, and the next mount has every fsynced page (replay writes
# them in place again) and zeros elsewhere.
t_kill_after_fsync_in_place() {
	cowfs_mount "$IMG" "$MNT" commit=600 || return 1
	fallocate -l 16M "$MNT/k" && "$COWFS" sync "$MNT" >/dev/null || return 1
	python3 - "$MNT/k" "$WORK/k.model" <<-'PY' || return 1
		import os, random, sys
		random.seed(3)
		fd = os.open(sys.argv[1], os.O_RDWR)
		model = bytearray(16 << 20)
		for n in range(600):
		    p = random.randrange(4096)
		    b = random.randbytes(4096)
		    os.pwrite(fd, b, p * 4096)
		    model[p * 4096:(p + 1) * 4096] = b
		    if n % 50 == 49:
		        os.fsync(fd)
		open(sys.argv[2], "wb").write(model)
	PY
	cowfs_kill_remount "$IMG" "$MNT" || return 1
	cmp "$WORK/k.model" "$MNT/k" || { echo "    not what was fsynced"; return 1; }
	rm -f "$MNT/k"
	cowfs_umount "$MNT" "$IMG"
}

command -v mkfs.btrfs >/dev/null || { echo "test_prealloc_statfs: mkfs.btrfs not installed" >&2; exit 1; }
step "btrfs on a loop device" t_btrfs_setup || { lib_summary; exit 1; }
step "mkfs.cowfs 4 GiB" cowfs_mkfs "$IMG" 4G || { lib_summary; exit 1; }
if step "mount" cowfs_mount "$IMG" "$MNT" commit=600; then
	step "df -i after 20 files: as btrfs shows it" t_df_inodes
	step "fallocate of f_bavail + 1 block: ENOSPC; of f_bavail: succeeds" t_bavail_exact
	step "full: writing all of the preallocated file succeeds" t_full_write_prealloc
	step "full: deleting works" t_full_delete
	step "2 bytes fallocated across a block boundary, then written: allocated as on btrfs" \
		t_falloc_write_in_place
	step "a clone of a preallocated file, space filled: both files take writes over all of it" \
		t_clone_prealloc_full
	step "full: 4,000 scattered 4 KiB writes into preallocated space, read back equal" \
		t_scattered_prealloc_full
	step "unmount" cowfs_umount "$MNT" "$IMG"
fi
step "kill -9 after fsynced writes into preallocated space: replayed, fsck clean" \
	t_kill_after_fsync_in_place
step "fsck.cowfs at the end" run_fsck "$IMG"
lib_summary
