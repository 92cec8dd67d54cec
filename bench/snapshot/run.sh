#!/usr/bin/env bash
# Snapshot benchmark (issue 13): cowfs subvolumes against kernel btrfs on a loop device and
# zfs-fuse on a file vdev, in the same run, one peer after another, each on a fresh image torn
# down before the next. Prints one markdown table with the issue's goals (bench/README.md,
# "Snapshots"). Root only.
#
#   bench/snapshot/run.sh [--only cowfs,btrfs,zfs-fuse] [--reps N] [--runs N] [--files N] [--dirs N]
#                         [--max-size BYTES] [--image-size SIZE] [--quick] [--dir DIR]
#                         [--cowfs-bin DIR] [--cowfs-opts OPTS] [--keep]
#
# Per peer: an empty subvolume `empty` and a subvolume `full` holding FILES files of 0..MAX_SIZE
# bytes in DIRS directories (tree.py create), synced, one untimed warm-up snapshot of each
# (it also makes zfs-fuse write out its open transaction group), every file of `full` stat'ed
# (all its inodes cached, as right after writing them); then
#  (a) REPS read-only snapshots of `empty`, each timed alone, the filesystem synced between;
#  (b) REPS read-only snapshots of `full`, the same; medians. All but the last snapshot of
#      `full` are deleted (untimed, waited for); the last one, S, is kept;
#      then a quarter of the files of `full` are overwritten and a quarter deleted (tree.py
#      change) and the filesystem synced: S now holds the old data and tree blocks alone;
#  (d) "exclusive bytes of S", timed: btrfs `quota rescan -w` + `qgroup show --raw` (quotas
#      enabled and their first rescan waited for, untimed; disabled again after (d)); zfs-fuse
#      `zfs get used,referenced S`; cowfs `cowfs subvolume show --json S` (and `subvolume list -s`
#      of the mount, a second figure). Once warm, once after a cold remount;
#  (c) after another cold remount: delete S and time until its space is back: btrfs `subvolume
#      delete` + `filesystem sync` (wakes the cleaner) + `subvolume list -d` polled every 50 ms
#      until empty (`subvolume sync`, polled), zfs-fuse `zfs destroy`, cowfs
#      `subvolume delete` + `subvolume sync`; then the peer's sync and a reading of used space,
#      repeated until two readings agree: the time is that of the first of them. Used space:
#      btrfs `filesystem df` (data + metadata + system, logical bytes), zfs-fuse the pool's
#      `used`, cowfs statfs. The space freed is the truth (d)'s figure is checked against.
# --runs N does all of it N times (peers in turn, a fresh image each time); the table shows the
# medians over every run's figures.
# A cowfs whose CLI has no `subvolume` command, or whose mount answers it with an error, is
# "cowfs: not available" in every cell (the reason is in DIR/bench.log).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

ONLY="cowfs,btrfs,zfs-fuse" REPS=9 RUNS=1 FILES=100000 DIRS=100 MAX_SIZE=4096 IMAGE_SIZE_OPT=4G
DIR="$ROOT/build/snapshot-bench-tmp" COWFS_BIN="$ROOT/build/bin" COWFS_OPTS="" KEEP=""
UMOUNT_WAIT=120 SEED=1 POLL_LIMIT_S=${SNAPSHOT_POLL_LIMIT_S:-600} ZFS_SYNCS=0

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
need_arg() { [ $# -ge 2 ] || { echo "snapshot-bench: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
	case $1 in
	--only) need_arg "$@"; ONLY=$2; shift ;;
	--reps) need_arg "$@"; REPS=$2; shift ;;
	--runs) need_arg "$@"; RUNS=$2; shift ;;
	--files) need_arg "$@"; FILES=$2; shift ;;
	--dirs) need_arg "$@"; DIRS=$2; shift ;;
	--max-size) need_arg "$@"; MAX_SIZE=$2; shift ;;
	--image-size) need_arg "$@"; IMAGE_SIZE_OPT=$2; shift ;;
	--quick) REPS=3 FILES=5000 DIRS=10 ;;
	--dir) need_arg "$@"; DIR=$2; shift ;;
	--cowfs-bin) need_arg "$@"; COWFS_BIN=$(cd "$2" && pwd); shift ;;
	--cowfs-opts) need_arg "$@"; COWFS_OPTS=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "snapshot-bench: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || { echo "snapshot-bench: must run as root (loop devices, mounts)" >&2; exit 2; }
[ "$REPS" -ge 1 ] 2>/dev/null || { echo "snapshot-bench: --reps must be >= 1" >&2; exit 2; }
[ "$RUNS" -ge 1 ] 2>/dev/null || { echo "snapshot-bench: --runs must be >= 1" >&2; exit 2; }

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
exec 9>"$DIR/.lock"
flock -n 9 || { echo "snapshot-bench: another run holds $DIR/.lock" >&2; exit 2; }
LOG="$DIR/bench.log"
RESULTS="$DIR/results.tsv"
: >"$RESULTS"
: >"$LOG"
log() { printf '[snapshot-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$LOG" >&2; }
record_rss() { :; }   # peers.sh samples daemon RSS for fsbench; not a figure here
# shellcheck source=../fsbench/peers.sh
. "$ROOT/bench/fsbench/peers.sh"
ZPOOL=snapbench       # not fsbench's pool: both benches may leave theirs to the other's cleanup
ZFS=$ZPOOL/bench      # the dataset peers.sh mounts on the peer's mnt/

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }   # PEER METRIC VALUE
has() { [[ ",$1," == *",$2,"* ]]; }
now_ns() { date +%s%N; }
ms_between() { echo "scale=2; ($2 - $1) / 1000000" | bc; }
COWFS() { "$COWFS_BIN/cowfs" "$@"; }

# Run a logged command; its output goes to the log. Returns its exit status.
run() { echo "+ $*" >>"$LOG"; "$@" >>"$LOG" 2>&1; }

# Time one command (output to the log): sets MS; returns the command's status, 124 if it ran
# for more than POLL_LIMIT_S. The command runs in the background and the script waits for it:
# a signal's trap runs at once (bash defers traps during a foreground command, and a FUSE
# request the server never answers, e.g. a subvolume sync whose drop never ends, cannot be
# killed). A watchdog interrupts the wait at the limit; the command is left to the teardown.
CHILD="" WATCHDOG="" TIMED_OUT=""
trap 'TIMED_OUT=1' USR1
timed() {
	local t0 t1 rc
	echo "+ [timed] $*" >>"$LOG"
	TIMED_OUT=""
	# Gone within a second of a killed script; quiet when stopped.
	(for ((w = 0; w < POLL_LIMIT_S; w++)); do sleep 1; kill -0 $$ || exit; done
		kill -USR1 $$) 2>/dev/null 9>&- &
	WATCHDOG=$!
	t0=$(now_ns)
	"$@" >>"$LOG" 2>&1 9>&- &
	CHILD=$!
	wait "$CHILD"
	rc=$?
	t1=$(now_ns)
	stop_watchdog
	MS=$(ms_between "$t0" "$t1")
	if [ -n "$TIMED_OUT" ]; then
		echo "+ timed out after ${POLL_LIMIT_S}s: $*" >>"$LOG"
		return 124
	fi
	CHILD=""
	return $rc
}
stop_watchdog() {
	[ -n "$WATCHDOG" ] || return 0
	pkill -P "$WATCHDOG" 2>/dev/null   # its sleep
	kill "$WATCHDOG" 2>/dev/null
	wait "$WATCHDOG" 2>/dev/null
	WATCHDOG=""
}
stop_child() {   # a timed command still running (interrupted, timed out): it and its children
	[ -n "$CHILD" ] || return 0
	pkill -P "$CHILD" 2>/dev/null
	kill "$CHILD" 2>/dev/null
	CHILD=""
}

# ---------------------------------------------------------------- the peers' subvolume commands

mnt_of() { peer_mnt "$1"; }
snap_path() { printf '%s/snaps/%s' "$(mnt_of "$1")" "$2"; }   # btrfs, cowfs

peer_sync() {   # PEER: everything written is committed
	case $1 in
	cowfs) COWFS sync "$(mnt_of cowfs)" >>"$LOG" 2>&1 ;;
	btrfs) sync -f "$(mnt_of btrfs)" ;;
	# zfs-fuse has no syncfs nor `zpool sync`; setting a property is a sync task, which returns
	# once its transaction group, and with it every earlier write, is on disk.
	zfs-fuse) ZFS_SYNCS=$((ZFS_SYNCS + 1)); zfs set "bench:sync=$ZFS_SYNCS" "$ZPOOL" ;;
	esac
}

sv_create() {   # PEER NAME: a subvolume at mnt/NAME
	local mnt
	mnt=$(mnt_of "$1")
	case $1 in
	cowfs) run COWFS subvolume create "$mnt/$2" && mkdir -p "$mnt/snaps" ;;
	btrfs) run btrfs subvolume create "$mnt/$2" && mkdir -p "$mnt/snaps" ;;
	zfs-fuse) run zfs create "$ZFS/$2" && wait_mounted "$mnt/$2" 10 ;;
	esac
}

sv_snapshot() {   # PEER SRC NAME: read-only snapshot, timed (MS)
	local mnt
	mnt=$(mnt_of "$1")
	case $1 in
	cowfs) timed COWFS snapshot -r "$mnt/$2" "$(snap_path cowfs "$3")" ;;
	btrfs) timed btrfs subvolume snapshot -r "$mnt/$2" "$(snap_path btrfs "$3")" ;;
	zfs-fuse) timed zfs snapshot "$ZFS/$2@$3" ;;
	esac
}

sv_delete() {   # PEER SRC NAME: delete the snapshot and wait until it is dropped, timed (MS)
	local mnt
	mnt=$(mnt_of "$1")
	case $1 in
	cowfs) timed sh -c '"$1" subvolume delete "$2" && "$1" subvolume sync "$3"' sh \
		"$COWFS_BIN/cowfs" "$(snap_path cowfs "$3")" "$mnt" ;;
	# `filesystem sync` commits and wakes the cleaner, which otherwise starts on the dropped
	# subvolume only at the next periodic commit (commit=30 by default: ~30 s more). Then the
	# wait of `subvolume sync`, but polled every 50 ms: it checks once a second.
	btrfs) timed sh -c 'btrfs subvolume delete "$1" && btrfs filesystem sync "$2" || exit 1
		while [ -n "$(btrfs subvolume list -d "$2")" ]; do sleep 0.05; done' sh \
		"$(snap_path btrfs "$3")" "$mnt" ;;
	zfs-fuse) timed zfs destroy "$ZFS/$2@$3" ;;
	esac
}

# Bytes the filesystem holds, after the peer's sync.
used_bytes() {
	local blocks free bsize
	peer_sync "$1"
	case $1 in
	btrfs) btrfs filesystem df -b "$(mnt_of btrfs)" |
		awk -F'used=' '/^(Data|Metadata|System)/ {s += $2} END {printf "%.0f\n", s}' ;;
	zfs-fuse) zfs get -Hp -o value used "$ZPOOL" ;;
	cowfs) read -r blocks free bsize < <(stat -f -c '%b %f %S' "$(mnt_of cowfs)")
		echo $(((blocks - free) * bsize)) ;;
	esac
}

# After a delete: read used space (after a sync) until two readings agree. Sets FREED_AT_NS
# (the time of the first of them) and USED_AFTER.
wait_space_back() {   # PEER
	local prev="" prev_t=0 u t deadline
	deadline=$(($(date +%s) + POLL_LIMIT_S))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		u=$(used_bytes "$1")
		t=$(now_ns)
		if [ -n "$prev" ] && [ "$u" = "$prev" ]; then
			FREED_AT_NS=$prev_t USED_AFTER=$u
			return 0
		fi
		prev=$u prev_t=$t
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- exclusive bytes

excl_prepare() {   # PEER
	case $1 in
	btrfs) run btrfs quota enable "$(mnt_of btrfs)" &&
		run btrfs quota rescan -W "$(mnt_of btrfs)" ;;   # the first rescan, started by enable
	*) return 0 ;;
	esac
}

excl_done() {   # PEER
	case $1 in
	btrfs) run btrfs quota disable "$(mnt_of btrfs)" ;;
	*) return 0 ;;
	esac
}

# The exclusive bytes of snapshot NAME of SRC, timed (MS); the figure into EXCL.
excl_query() {   # PEER SRC NAME
	local out="$DIR/excl.out" t0 t1 id path
	EXCL=""
	case $1 in
	btrfs)
		path=$(snap_path btrfs "$3")
		id=$(btrfs inspect-internal rootid "$path") || return 1
		echo "+ [timed] btrfs quota rescan -w + qgroup show --raw (subvolume $id)" >>"$LOG"
		t0=$(now_ns)
		btrfs quota rescan -w "$(mnt_of btrfs)" >>"$LOG" 2>&1 &&
			btrfs qgroup show --raw "$(mnt_of btrfs)" >"$out" 2>>"$LOG" || return 1
		t1=$(now_ns)
		EXCL=$(awk -v q="0/$id" '$1 == q {print $3}' "$out") ;;
	zfs-fuse)
		echo "+ [timed] zfs get -Hp used,referenced $ZFS/$2@$3" >>"$LOG"
		t0=$(now_ns)
		zfs get -Hp -o property,value used,referenced "$ZFS/$2@$3" >"$out" 2>>"$LOG" || return 1
		t1=$(now_ns)
		EXCL=$(awk '$1 == "used" {print $2}' "$out") ;;
	cowfs)
		path=$(snap_path cowfs "$3")
		echo "+ [timed] cowfs subvolume show --json $path" >>"$LOG"
		t0=$(now_ns)
		COWFS subvolume show --json "$path" >"$out" 2>>"$LOG" || return 1
		t1=$(now_ns)
		read -r EXCL EXCL_ID < <(python3 "$HERE/exclusive.py" "$out") ;;
	esac
	cat "$out" >>"$LOG"
	MS=$(ms_between "$t0" "$t1")
	[ -n "$EXCL" ]
}

# ---------------------------------------------------------------- one peer

# cowfs without subvolumes (the CLI or the mount does not know them): every cell says so.
cowfs_available() {
	local out
	out=$(COWFS subvolume list "$(mnt_of cowfs)" 2>&1) && return 0
	log "cowfs: subvolume list failed: $(tail -n1 <<<"$out")"
	return 1
}

# The oracle of cowfs's figure: `cowfs dump --subvol-space ID` recounts the snapshot's exclusive
# bytes by walking every fs tree, no reference counts (untimed; the image unmounted meanwhile).
cowfs_recount() {   # ID
	local out="$DIR/recount.out"
	peer_umount cowfs || { fail cowfs "unmount for the recount: $PEER_ERR"; return 1; }
	run COWFS dump --subvol-space "$1" "$(peer_img cowfs)"
	COWFS dump --subvol-space "$1" "$(peer_img cowfs)" >"$out" 2>&1
	record cowfs excl_recount "$(awk '$1 == "recount" {
		for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] ~ /^exclusive_(data|meta)$/) s += kv[2] }
		found = 1 } END { if (found) printf "%.0f\n", s; else print "ERROR: no recount line" }' "$out")"
	peer_mount cowfs || { fail cowfs "mount after the recount: $PEER_ERR"; return 1; }
}

NA_METRICS="snap_empty_ms snap_full_ms del_ms del_cmd_ms del_freed excl_ms excl_cold_ms excl_list_ms excl_bytes"
record_all() {   # PEER VALUE
	local m
	for m in $NA_METRICS; do record "$1" "$m" "$2"; done
}

fail() {   # PEER WHAT: the peer's remaining figures are lost; log why
	log "$1: $2 failed (see $LOG)"
	record "$1" error "$2 failed"
	return 1
}

cold() { peer_cold "$1" || fail "$1" "cold remount: $PEER_ERR"; }

bench_peer() {   # PEER
	local peer=$1 mnt i bytes before last
	log "$peer: setting up"
	peer_teardown "$peer" >/dev/null 2>&1
	rm -rf "$(peer_dir "$peer")"
	mkdir -p "$(peer_mnt "$peer")"
	IMAGE_SIZE=$IMAGE_SIZE_OPT
	peer_setup "$peer" || { fail "$peer" "setup: $PEER_ERR"; return; }
	mnt=$(mnt_of "$peer")
	if [ "$peer" = cowfs ] && ! cowfs_available; then
		record_all cowfs "cowfs: not available"
		return
	fi
	sv_create "$peer" empty && sv_create "$peer" full || { fail "$peer" "subvolume create"; return; }
	log "$peer: $FILES files in $DIRS directories"
	bytes=$(python3 "$HERE/tree.py" create "$mnt/full" "$FILES" "$DIRS" "$MAX_SIZE" "$SEED") ||
		{ fail "$peer" "tree.py create"; return; }
	record "$peer" tree_bytes "$bytes"
	peer_sync "$peer"
	sv_snapshot "$peer" empty ew && sv_snapshot "$peer" full fw ||
		{ fail "$peer" "warm-up snapshot"; return; }
	peer_sync "$peer"

	# Every inode of `full` cached, as right after writing them, whatever was evicted since: the
	# same starting point for every peer and every run (a server may keep per-inode state).
	python3 "$HERE/tree.py" stat "$mnt/full" "$FILES" "$DIRS" "$MAX_SIZE" "$SEED" >/dev/null ||
		{ fail "$peer" "tree.py stat"; return; }
	log "$peer: (a) $REPS snapshots of the empty subvolume, (b) $REPS of the full one"
	for ((i = 1; i <= REPS; i++)); do
		sv_snapshot "$peer" empty "e$i" || { fail "$peer" "snapshot of empty"; return; }
		record "$peer" snap_empty_ms "$MS"
		peer_sync "$peer"
		sv_snapshot "$peer" full "f$i" || { fail "$peer" "snapshot of full"; return; }
		record "$peer" snap_full_ms "$MS"
		peer_sync "$peer"
	done
	last="f$REPS"
	for i in fw $(seq 1 $((REPS - 1)) | sed 's/^/f/'); do
		sv_delete "$peer" full "$i" || { fail "$peer" "delete of snapshot $i"; return; }
	done

	log "$peer: changing the source so that $last holds data of its own"
	bytes=$(python3 "$HERE/tree.py" change "$mnt/full" "$FILES" "$DIRS" "$MAX_SIZE" "$SEED") ||
		{ fail "$peer" "tree.py change"; return; }
	record "$peer" changed_bytes "$bytes"
	peer_sync "$peer"

	log "$peer: (d) exclusive bytes of $last"
	excl_prepare "$peer" || { fail "$peer" "quota enable"; return; }
	excl_query "$peer" full "$last" || { fail "$peer" "exclusive bytes query"; return; }
	record "$peer" excl_ms "$MS"
	record "$peer" excl_bytes "$EXCL"
	if [ "$peer" = cowfs ]; then
		timed COWFS subvolume list -s "$mnt" && record cowfs excl_list_ms "$MS"
	fi
	cold "$peer" || return
	excl_query "$peer" full "$last" || { fail "$peer" "exclusive bytes query (cold)"; return; }
	record "$peer" excl_cold_ms "$MS"
	record "$peer" excl_cold_bytes "$EXCL"
	[ "$peer" = cowfs ] && { cowfs_recount "$EXCL_ID" || return; }
	excl_done "$peer" || { fail "$peer" "quota disable"; return; }

	log "$peer: (c) deletion of $last until its space is back"
	cold "$peer" || return
	before=$(used_bytes "$peer")
	local t0
	t0=$(now_ns)
	sv_delete "$peer" full "$last" || { fail "$peer" "delete of $last"; return; }
	record "$peer" del_cmd_ms "$MS"
	wait_space_back "$peer" || { fail "$peer" "waiting for the space (${POLL_LIMIT_S}s)"; return; }
	record "$peer" del_ms "$(ms_between "$t0" "$FREED_AT_NS")"
	record "$peer" del_freed $((before - USED_AFTER))
}

cleanup() {
	stop_watchdog
	stop_child
	for p in cowfs btrfs zfs-fuse; do peer_teardown "$p" >/dev/null 2>&1; done
	[ -n "$KEEP" ] || rm -rf "$DIR"/cowfs "$DIR"/btrfs "$DIR"/zfs-fuse "$DIR/excl.out" "$DIR/recount.out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "run: $RUNS run(s), reps $REPS, $FILES files of 0..$MAX_SIZE bytes in $DIRS directories, images $IMAGE_SIZE_OPT"
cleanup   # what a killed run left behind
for ((run = 1; run <= RUNS; run++)); do
	for p in btrfs zfs-fuse cowfs; do
		has "$ONLY" "$p" || continue
		log "run $run of $RUNS: $p"
		bench_peer "$p"
		if [ "$p" = cowfs ] && [ -f "$(peer_img cowfs)" ]; then
			FSCK_COWFS=1 FSCK_RESULT=""
			peer_teardown cowfs >/dev/null 2>&1
			[ -n "$FSCK_RESULT" ] && record cowfs fsck "$FSCK_RESULT"
		else
			peer_teardown "$p" >/dev/null 2>&1
		fi
		rm -rf "$(peer_dir "$p")"
	done
done
python3 "$HERE/report.py" "$RESULTS" "$REPS" "$FILES" "$RUNS" | tee "$DIR/results.md"
