#!/usr/bin/env bash
# Snapshots taken while a writer streams into the source, on a real mount: each snapshot holds a
# prefix of the writer's records, at least every record whose write(2) had returned before
# `cowfs snapshot` began and none started after it returned, and never a torn page (each record
# is 12,300 bytes of its own pattern, so records straddle pages; of the one write running when
# the snapshot is taken, whole pages may be in: the kernel sends a write(2) as FUSE requests cut
# at page boundaries). Read-only and writable snapshots, of a subvolume and of the top level;
# fsck clean at the end.
#
#   bash tests/integ/test_snapshot_stream.sh
#
# Needs root. Environment: BIN (build/bin), COWFS_TEST_DIR, COWFS_KEEP=1.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

lib_require_programs test_snapshot_stream
if [ "$(id -u)" -ne 0 ]; then
	echo "test_snapshot_stream: needs root: skipped"
	exit 0
fi
PY=$(command -v /usr/bin/python3 || command -v python3)

lib_init test_snapshot_stream
IMG=$WORK/cowfs.img
MNT=$WORK/mnt
REC=12300
SNAPS=6

t_setup() {
	cowfs_mkfs "$IMG" 2G && cowfs_mount "$IMG" "$MNT" &&
		run "$COWFS" subvolume create "$MNT/sv" || { show_output; return 1; }
}

# stream SRCDIR SNAPDIR [-r]: a writer appends records to SRCDIR/stream while SNAPS snapshots of
# SRCDIR's subvolume are taken into SNAPDIR; each snapshot is then checked against the writer's
# counters (records started and done, kept outside the mount) read around the snapshot command.
stream() {
	local src=$1 snapdir=$2 ro=${3:-} wpid i lo hi ok=0 cnt=$WORK/count
	rm -f "$cnt".*
	"$PY" -c "
import os
rec = $REC
base = bytes(range(251)) * (rec // 251 + 2)
fd = os.open('$src/stream', os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
def put(name, n):
    with open('$cnt.' + name + '.tmp', 'w') as f: f.write(str(n))
    os.rename('$cnt.' + name + '.tmp', '$cnt.' + name)
for n in range(20000):
    put('started', n + 1)
    buf = base[n * 7 % 251:][:rec]
    assert os.write(fd, buf) == rec
    put('done', n + 1)" &
	wpid=$!
	for i in $(seq 1 "$SNAPS"); do
		while [ ! -s "$cnt.done" ] || [ "$(cat "$cnt.done")" -lt $((i * 120)) ]; do
			sleep 0.01
		done
		lo=$(cat "$cnt.done")
		run "$COWFS" snapshot $ro "$src" "$snapdir/s$i" || { show_output; kill $wpid; return 1; }
		hi=$(cat "$cnt.started")
		echo "$i $lo $hi" >>"$WORK/bounds"
	done
	kill $wpid 2>/dev/null; wait $wpid 2>/dev/null
	while read -r i lo hi; do
		"$PY" -c "
import os, sys
rec = $REC
base = bytes(range(251)) * (rec // 251 + 2)
p = '$snapdir/s$i/stream'
size = os.path.getsize(p)
n, part = divmod(size, rec)
# A write still running may be in part: the kernel sends a write(2) as requests cut at page
# boundaries, and the server takes each request whole. So: whole pages of it, never a torn page.
if part and size % 4096:
    sys.exit('snapshot $i: size %d ends inside a page of a record (torn page)' % size)
if not ($lo <= n and n + (part > 0) <= $hi):
    sys.exit('snapshot $i: %d records (+%d bytes), the writer had done $lo and started $hi'
             % (n, part))
with open(p, 'rb') as f:
    for k in range(n + (part > 0)):
        want = base[k * 7 % 251:][:rec]
        got = f.read(rec)
        if got != want[:len(got)]:
            sys.exit('snapshot $i: record %d of %d differs' % (k, n))
print('    snapshot $i: %d records%s (done $lo, started $hi)'
      % (n, ' and %d bytes of the next, to a page boundary' % part if part else ''))" || return 1
		ok=$((ok + 1))
	done <"$WORK/bounds"
	rm -f "$WORK/bounds"
	[ "$ok" -eq "$SNAPS" ]
}

t_subvol_ro() {
	mkdir "$MNT/ro" && stream "$MNT/sv" "$MNT/ro" -r
}

t_subvol_rw() {
	mkdir "$MNT/rw" && stream "$MNT/sv" "$MNT/rw"
}

t_top_level() {
	stream "$MNT" "$MNT" -r
}

t_fsck() {
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG"
}

step "setup" t_setup || { lib_summary; exit 1; }
step "read-only snapshots of a subvolume under a streaming writer: prefixes, none torn" t_subvol_ro
step "writable snapshots, the same" t_subvol_rw
step "snapshots of the top level, the same" t_top_level
step "fsck clean" t_fsck
lib_summary
