#!/usr/bin/env bash
# Sharing benchmark (issue 11): reflink, dedupe and shared-space accounting on cowfs (FUSE,
# through the preload shim where the program needs it) and on kernel btrfs and xfs on loop
# devices, in the same run. Prints one markdown table (bench/README.md, "Sharing"). Root only.
#
#   bench/share/run.sh [--steps clone,dedupe,du] [--only cowfs,btrfs,xfs] [--runs N]
#                      [--clone-sizes 1G,16G] [--dedupe-size 2G] [--du-files 100000]
#                      [--quick] [--dir DIR] [--cowfs-bin DIR] [--keep]
#
# clone:  a file of SIZE (real data: a 64 MiB random block repeated; no peer compresses or
#         dedupes inline), written and synced, the mount made cold; then timed:
#         `cp --reflink=always SRC DST` and plain `cp SRC DST2` (coreutils 9.1: reflink=auto,
#         copy_file_range), the program alone (clone_*, cp_*) and with the peer's sync after it
#         (clone_sync_*, cp_sync_*: `cowfs sync` commits; `sync -f` on the kernel peers); data
#         space used by each copy (statfs used after minus before, after the sync).
# dedupe: a tree of SIZE in 4 MiB files, half of them byte copies of the other half (written
#         with dd, so nothing is shared yet); then timed on a cold mount: `cowfs dedupe -r` on
#         cowfs, `duperemove -d -r -q` on btrfs and xfs; bytes freed (statfs after sync) and
#         the tool's peak RSS (/usr/bin/time -f %M).
# du:     N files: N/2 files of 8 KiB in directories of 1,000 and a clone (FICLONE) of each;
#         timed on a cold mount: `cowfs du -s` on cowfs, `btrfs filesystem du -s` and
#         `compsize` on btrfs (xfs has no shared-space tool).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

STEPS="clone,dedupe,du" ONLY="cowfs,btrfs,xfs" RUNS=1 CLONE_SIZES="1G,16G" DEDUPE_SIZE=2G
DU_FILES=100000 DIR="$ROOT/build/share-bench-tmp" COWFS_BIN="$ROOT/build/bin" KEEP=""
COWFS_OPTS="" UMOUNT_WAIT=120

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
need_arg() { [ $# -ge 2 ] || { echo "share-bench: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
	case $1 in
	--steps) need_arg "$@"; STEPS=$2; shift ;;
	--only) need_arg "$@"; ONLY=$2; shift ;;
	--runs) need_arg "$@"; RUNS=$2; shift ;;
	--clone-sizes) need_arg "$@"; CLONE_SIZES=$2; shift ;;
	--dedupe-size) need_arg "$@"; DEDUPE_SIZE=$2; shift ;;
	--du-files) need_arg "$@"; DU_FILES=$2; shift ;;
	--quick) CLONE_SIZES=256M DEDUPE_SIZE=256M DU_FILES=4000 ;;
	--dir) need_arg "$@"; DIR=$2; shift ;;
	--cowfs-bin) need_arg "$@"; COWFS_BIN=$(cd "$2" && pwd); shift ;;
	--keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "share-bench: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || { echo "share-bench: must run as root (loop devices, mounts)" >&2; exit 2; }

to_bytes() {
	local n=${1%[kKmMgGtT]} u=${1: -1}
	case $u in
	k | K) echo $((n << 10)) ;; m | M) echo $((n << 20)) ;; g | G) echo $((n << 30)) ;;
	t | T) echo $((n << 40)) ;; *) echo "$1" ;;
	esac
}

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
LOG="$DIR/bench.log"
RESULTS="$DIR/results.tsv"
: >"$RESULTS"
log() { printf '[share-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$LOG" >&2; }
record_rss() { :; }   # peers.sh samples daemon RSS for fsbench; not a figure here
# shellcheck source=../fsbench/peers.sh
. "$ROOT/bench/fsbench/peers.sh"

PRELOAD="$COWFS_BIN/../lib/libcowfs-preload.so"
[ -e "$PRELOAD" ] || PRELOAD="$ROOT/build/lib/libcowfs-preload.so"

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }   # PEER METRIC VALUE
has() { [[ ",$1," == *",$2,"* ]]; }

# Run a program on a peer's mount: through the shim on cowfs.
on_peer() {   # PEER CMD...
	local peer=$1
	shift
	if [ "$peer" = cowfs ]; then LD_PRELOAD="$PRELOAD" "$@"; else "$@"; fi
}

peer_sync() {   # PEER: what is on the mount is on disk
	if [ "$1" = cowfs ]; then "$COWFS_BIN/cowfs" sync "$(peer_mnt cowfs)" >/dev/null; else sync -f "$(peer_mnt "$1")"; fi
}

used_bytes() {   # PEER: bytes the filesystem counts as used
	peer_sync "$1"
	local blocks free bsize
	read -r blocks free bsize < <(stat -f -c '%b %f %S' "$(peer_mnt "$1")")
	echo $(((blocks - free) * bsize))   # bash arithmetic: mawk's %d stops at 2^31 - 1
}

now_ns() { date +%s%N; }
ms_since() { echo "scale=1; ($(now_ns) - $1) / 1000000" | bc; }

fresh_peer() {   # PEER IMAGE_SIZE
	peer_teardown "$1" >/dev/null 2>&1
	rm -rf "$(peer_dir "$1")"
	mkdir -p "$(peer_dir "$1")" "$(peer_mnt "$1")"
	IMAGE_SIZE=$2
	peer_setup "$1" || { log "$1: setup failed: $PEER_ERR"; return 1; }
}

cold() { peer_cold "$1" || { log "$1: cold remount failed: $PEER_ERR"; return 1; }; }

pattern_file() {   # 64 MiB of random data, made once
	local p="$DIR/pattern.bin"
	[ -s "$p" ] || head -c $((64 << 20)) /dev/urandom >"$p"
	echo "$p"
}

write_data() {   # FILE BYTES: the pattern repeated
	local file=$1 bytes=$2 pat n
	pat=$(pattern_file)
	n=$((bytes >> 26))
	for ((i = 0; i < n; i++)); do cat "$pat"; done >"$file"
	[ $((bytes & ((1 << 26) - 1))) -eq 0 ] || head -c $((bytes & ((1 << 26) - 1))) "$pat" >>"$file"
}

# ---------------------------------------------------------------- clone

step_clone() {   # PEER SIZE RUN
	local peer=$1 size=$2 bytes mnt before t ms used
	bytes=$(to_bytes "$size")
	fresh_peer "$peer" $((2 * bytes + (4 << 30))) || return
	mnt=$(peer_mnt "$peer")
	write_data "$mnt/src" "$bytes"
	peer_sync "$peer"
	cold "$peer" || return
	before=$(used_bytes "$peer")
	t=$(now_ns)
	if on_peer "$peer" cp --reflink=always "$mnt/src" "$mnt/clone" 2>>"$LOG"; then
		record "$peer" "clone_${size}_ms" "$(ms_since "$t")"
		peer_sync "$peer"
		ms=$(ms_since "$t")
		used=$(($(used_bytes "$peer") - before))
		record "$peer" "clone_sync_${size}_ms" "$ms"
		record "$peer" "clone_${size}_used" "$used"
		cmp -s "$mnt/src" "$mnt/clone" || record "$peer" "clone_${size}_ms" "ERROR: clone differs"
	else
		record "$peer" "clone_${size}_ms" "ERROR: cp --reflink=always failed"
	fi
	before=$(used_bytes "$peer")
	t=$(now_ns)
	if cp "$mnt/src" "$mnt/copy" 2>>"$LOG"; then
		record "$peer" "cp_${size}_ms" "$(ms_since "$t")"
		peer_sync "$peer"
		ms=$(ms_since "$t")
		used=$(($(used_bytes "$peer") - before))
		record "$peer" "cp_sync_${size}_ms" "$ms"
		record "$peer" "cp_${size}_used" "$used"
	else
		record "$peer" "cp_${size}_ms" "ERROR: cp failed"
	fi
	peer_teardown "$peer" >/dev/null 2>&1
	rm -rf "$(peer_dir "$peer")"
}

# ---------------------------------------------------------------- dedupe

make_dedupe_tree() {   # DIR BYTES: half the 4 MiB files are dd copies of the other half
	local d=$1 bytes=$2 n i
	n=$((bytes >> 22))
	mkdir -p "$d/a" "$d/b"
	for ((i = 0; i < n / 2; i++)); do
		head -c $((4 << 20)) /dev/urandom >"$d/a/f$i"
		dd if="$d/a/f$i" of="$d/b/f$i" bs=1M status=none
	done
}

step_dedupe() {   # PEER
	local peer=$1 bytes mnt before t ms freed rss out
	bytes=$(to_bytes "$DEDUPE_SIZE")
	fresh_peer "$peer" $((2 * bytes + (2 << 30))) || return
	mnt=$(peer_mnt "$peer")
	make_dedupe_tree "$mnt/tree" "$bytes"
	peer_sync "$peer"
	cold "$peer" || return
	before=$(used_bytes "$peer")
	out="$DIR/dedupe-$peer.out"
	t=$(now_ns)
	case $peer in
	cowfs) /usr/bin/time -f 'rss_kib %M' -o "$DIR/time.out" \
		"$COWFS_BIN/cowfs" dedupe -r "$mnt/tree" >"$out" 2>&1 ;;
	*) /usr/bin/time -f 'rss_kib %M' -o "$DIR/time.out" \
		duperemove -d -r -q "$mnt/tree" >"$out" 2>&1 ;;
	esac
	local rc=$?
	peer_sync "$peer"
	ms=$(ms_since "$t")
	freed=$((before - $(used_bytes "$peer")))
	rss=$(awk '/^rss_kib/ {print $2}' "$DIR/time.out")
	if [ $rc -ne 0 ]; then
		record "$peer" dedupe_ms "ERROR: exit $rc: $(tail -n1 "$out")"
	else
		record "$peer" dedupe_ms "$ms"
		record "$peer" dedupe_freed "$freed"
		record "$peer" dedupe_rss_kib "$rss"
	fi
	peer_teardown "$peer" >/dev/null 2>&1
	rm -rf "$(peer_dir "$peer")"
}

# ---------------------------------------------------------------- du

step_du() {   # PEER
	local peer=$1 mnt t ms
	[ "$peer" = xfs ] && return   # no shared-space tool on xfs
	fresh_peer "$peer" $((4 << 30)) || return
	mnt=$(peer_mnt "$peer")
	on_peer "$peer" python3 "$HERE/mktree.py" "$mnt/tree" "$DU_FILES" 2>>"$LOG" ||
		{ record "$peer" du_ms "ERROR: making the tree failed"; return; }
	peer_sync "$peer"
	cold "$peer" || return
	t=$(now_ns)
	case $peer in
	cowfs)
		"$COWFS_BIN/cowfs" du -s "$mnt/tree" >"$DIR/du-$peer.out" 2>&1 &&
			record "$peer" du_ms "$(ms_since "$t")" ||
			record "$peer" du_ms "ERROR: $(tail -n1 "$DIR/du-$peer.out")" ;;
	btrfs)
		btrfs filesystem du -s "$mnt/tree" >"$DIR/du-$peer.out" 2>&1 &&
			record "$peer" du_ms "$(ms_since "$t")" ||
			record "$peer" du_ms "ERROR: $(tail -n1 "$DIR/du-$peer.out")"
		cold "$peer" || return
		t=$(now_ns)
		compsize "$mnt/tree" >"$DIR/compsize.out" 2>&1 &&
			record "$peer" compsize_ms "$(ms_since "$t")" ||
			record "$peer" compsize_ms "ERROR: $(tail -n1 "$DIR/compsize.out")" ;;
	esac
	cat "$DIR/du-$peer.out" >>"$LOG"
	peer_teardown "$peer" >/dev/null 2>&1
	rm -rf "$(peer_dir "$peer")"
}

# ---------------------------------------------------------------- main

cleanup() {
	for p in cowfs btrfs xfs; do peer_teardown "$p" >/dev/null 2>&1; done
	[ -n "$KEEP" ] || rm -rf "$DIR"/cowfs "$DIR"/btrfs "$DIR"/xfs
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for ((run = 1; run <= RUNS; run++)); do
	for p in cowfs btrfs xfs; do
		has "$ONLY" "$p" || continue
		if has "$STEPS" clone; then
			for s in ${CLONE_SIZES//,/ }; do log "run $run: $p clone $s"; step_clone "$p" "$s"; done
		fi
		has "$STEPS" dedupe && { log "run $run: $p dedupe"; step_dedupe "$p"; }
		has "$STEPS" du && { log "run $run: $p du"; step_du "$p"; }
	done
done
python3 "$HERE/report.py" "$RESULTS" | tee "$DIR/results.md"
