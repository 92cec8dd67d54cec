#!/usr/bin/env bash
# Deleting big snapshots on a real mount (docs/DESIGN.md 16.3): a 100,000-file snapshot that
# holds all its data alone is deleted, and the daemon is killed (kill -9) several times while
# the cleaner is dropping it; every next mount resumes the drop where the last commit left it,
# fsck is clean after every kill, and at the end the data extents and bytes are exactly those
# of the files still live. While a drop runs, a writer keeps making progress (the cleaner lets
# the lock go between bounded steps). On a filesystem filled to ENOSPC, deleting a snapshot and
# its source works and gives the space back.
#
#   bash tests/integ/test_subvol_delete.sh
#
# Needs root. Environment: BIN (build/bin), COWFS_TEST_DIR, COWFS_KEEP=1,
# COWFS_DELETE_FILES (100000), COWFS_CLEANER_PAUSE_MS (30).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

lib_require_programs test_subvol_delete
if [ "$(id -u)" -ne 0 ]; then
	echo "test_subvol_delete: needs root: skipped"
	exit 0
fi
PY=$(command -v /usr/bin/python3 || command -v python3)
FILES=${COWFS_DELETE_FILES:-100000}

lib_init test_subvol_delete
# The cleaner pauses after each bounded step, so that polls land kills in the middle of a drop
# (unpaused it drops these snapshots in about a second); the steps themselves are unchanged.
export COWFS_CLEANER_PAUSE_MS=${COWFS_CLEANER_PAUSE_MS:-30}
IMG=$WORK/cowfs.img
MNT=$WORK/mnt

# fsck_figure WORD: the number before WORD in fsck's summary line ("N data extents").
fsck_figure() {
	sed -n "s/.* \([0-9][0-9]*\) $1.*/\1/p" "$LIB_OUT" | tail -n 1
}

# drop_permille: how far the drop of the one deleting subvolume is (-1: none is deleting).
drop_permille() {
	"$COWFS" subvolume list -d --json "$MNT" 2>/dev/null |
		"$PY" -c "
import json, sys
v = json.load(sys.stdin)['subvolumes']
print(v[0]['drop_permille'] if v else -1)"
}

# make_files DIR N: N files of 1..3,000 bytes in directories of 500.
make_files() {
	"$PY" -c "
import os
for i in range($2):
    d = '$1/d%03d' % (i // 500)
    if i % 500 == 0: os.mkdir(d)
    with open(d + '/f%06d' % i, 'wb') as f: f.write(bytes([i % 251]) * (1 + i % 3000))"
}

t_setup() {
	cowfs_mkfs "$IMG" 4G && cowfs_mount "$IMG" "$MNT" || return 1
	mkdir "$MNT/keep" && make_files "$MNT/keep" 2000 || return 1
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG" || return 1
	KEEP_EXTENTS=$(fsck_figure "data extents")
	echo "    data extents of the files that stay: $KEEP_EXTENTS"
	cowfs_mount "$IMG" "$MNT"
}

# A snapshot of FILES files whose source is then deleted, so that it holds everything alone.
t_big_snapshot() {
	run "$COWFS" subvolume create "$MNT/src" && make_files "$MNT/src" "$FILES" || return 1
	run "$COWFS" snapshot -r "$MNT/src" "$MNT/big" || { show_output; return 1; }
	run "$COWFS" subvolume delete "$MNT/src" && run "$COWFS" subvolume sync "$MNT" ||
		{ show_output; return 1; }
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG" || return 1
	echo "    with the snapshot: $(fsck_figure "data extents") data extents"
	cowfs_mount "$IMG" "$MNT"
}

# Kill the daemon each time the drop has passed the next mark; remount; go on.
t_kill_during_drop() {
	local marks="100 350 600 850" mark p kills=0 seen
	run "$COWFS" subvolume delete "$MNT/big" || { show_output; return 1; }
	[ ! -e "$MNT/big" ] || { echo "    the directory is still there"; return 1; }
	# Like btrfs's, a delete is not committed when it returns: a kill before the next commit
	# brings the snapshot back. Commit it, so that every kill below lands inside its drop.
	run "$COWFS" sync "$MNT" || { show_output; return 1; }
	for mark in $marks; do
		seen=-1
		while p=$(drop_permille) && [ "$p" -ge 0 ] && [ "$p" -lt "$mark" ]; do
			seen=$p
			sleep 0.02
		done
		[ "$p" -lt 0 ] && break   # done before this mark
		echo "    kill -9 at $p per mille (mark $mark; last seen $seen)"
		cowfs_kill_remount "$IMG" "$MNT" || return 1
		kills=$((kills + 1))
	done
	run "$COWFS" subvolume sync "$MNT" || { show_output; return 1; }
	echo "    $kills kills during the drop"
	[ "$kills" -ge 2 ] || { echo "    the drop ended before two kills could land"; return 1; }
	expect "still deleting" "$(drop_permille)" -1
}

t_space_back() {
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG" || return 1
	expect "data extents left" "$(fsck_figure "data extents")" "$KEEP_EXTENTS" || return 1
	cowfs_mount "$IMG" "$MNT"
}

# While a drop runs, a writer appends records; some of them land before the drop is done.
t_writer_not_stalled() {
	local p0 p1 w0 w1 wpid log=$WORK/writer.count
	run "$COWFS" subvolume create "$MNT/src2" && make_files "$MNT/src2" $((FILES / 2)) ||
		return 1
	run "$COWFS" snapshot -r "$MNT/src2" "$MNT/big2" && run "$COWFS" subvolume delete \
		"$MNT/src2" && run "$COWFS" subvolume sync "$MNT" || { show_output; return 1; }
	"$PY" -c "
import os
fd = os.open('$MNT/keep/log', os.O_WRONLY | os.O_CREAT | os.O_APPEND)
n = 0
while True:
    os.write(fd, b'r' * 4096)
    n += 1
    with open('$log.tmp', 'w') as f: f.write(str(n))
    os.rename('$log.tmp', '$log')" &
	wpid=$!
	while [ ! -s "$log" ]; do sleep 0.01; done
	run "$COWFS" subvolume delete "$MNT/big2" && run "$COWFS" sync "$MNT" ||
		{ kill $wpid; return 1; }
	p0=$(drop_permille); w0=$(cat "$log")
	while p1=$(drop_permille) && [ "$p1" -ge 0 ] && [ "$p1" -le "$p0" ]; do sleep 0.01; done
	w1=$(cat "$log")
	p1=$(drop_permille)
	kill $wpid; wait $wpid 2>/dev/null
	echo "    drop at $p0 per mille: writer at $w0 records; drop still going ($p1): $w1"
	[ "$p0" -ge 0 ] && [ "$p1" -ge 0 ] ||
		{ echo "    the drop ended before the writer could be seen beside it"; return 1; }
	[ "$w1" -gt "$w0" ] || { echo "    the writer made no progress beside the drop"; return 1; }
	run "$COWFS" subvolume sync "$MNT" || { show_output; return 1; }
	rm -f "$MNT/keep/log"
}

# Full: a subvolume and a read-only snapshot of it hold everything; deleting both works.
t_full_filesystem() {
	local before after
	cowfs_umount "$MNT" "$IMG" && cowfs_mkfs "$IMG" 64M && cowfs_mount "$IMG" "$MNT" || return 1
	before=$(df --output=avail -k "$MNT" | tail -n 1 | tr -d ' ')
	run "$COWFS" subvolume create "$MNT/s" || { show_output; return 1; }
	make_files "$MNT/s" 300 || return 1
	run "$COWFS" snapshot -r "$MNT/s" "$MNT/snap" || { show_output; return 1; }
	rm -rf "$MNT/s"/d000
	dd if=/dev/urandom of="$MNT/s/fill" bs=1M 2>/dev/null
	[ "$(df --output=avail -k "$MNT" | tail -n 1 | tr -d ' ')" -lt 1024 ] ||
		{ echo "    not full"; return 1; }
	run "$COWFS" subvolume delete "$MNT/snap" "$MNT/s" && run "$COWFS" subvolume sync "$MNT" ||
		{ show_output; return 1; }
	after=$(df --output=avail -k "$MNT" | tail -n 1 | tr -d ' ')
	echo "    avail: ${before} KiB empty, ${after} KiB after deleting both"
	[ "$after" -ge $((before - 512)) ] || { echo "    space not back"; return 1; }
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG"
}

step "setup" t_setup || { lib_summary; exit 1; }
step "a $FILES-file snapshot holding everything alone" t_big_snapshot
step "kill -9 at several points of its drop: each mount resumes, fsck clean" t_kill_during_drop
step "the data is exactly that of the files still live" t_space_back
step "a writer goes on beside a drop" t_writer_not_stalled
step "deleting on a full filesystem gives the space back" t_full_filesystem
lib_summary
