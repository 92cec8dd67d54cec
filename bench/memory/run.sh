#!/usr/bin/env bash
# Memory benchmark (issue 12 item 4): the cowfs daemon's resident memory under load, against its
# cache_size. For each cache size: a fresh image, mounted with cache_size=SIZE; then ROUNDS rounds
# of 3 concurrent fsx (build/tests/fsx, data-verifying, 4 files of up to 8 MiB each) plus
# meta-stress (bench/memory/meta_stress.c: creates, renames, unlinks, mkdir/rmdir, links,
# symlinks, xattrs, small writes), all four at once. The daemon's VmRSS and VmHWM are sampled
# from /proc/PID/status every 0.5 s. Prints, per cache size, one line per round (peak RSS during
# the round, RSS at its end, most threads seen) and the peak (VmHWM) and creep (growth of the
# end-of-round RSS per round after the first). Root only (mounts).
#
#   bench/memory/run.sh [--cache 16M,256M] [--rounds 4] [--fsx-ops 20000] [--meta-ops 60000]
#                       [--image-size 4G] [--dir build/memory-tmp] [--cowfs-bin build/bin]
#                       [--cowfs-opts OPTS] [--keep]
#
# --cowfs-opts adds mount options (comma separated) to cache_size=. COWFS_MALLOC_DEBUG etc. in the
# environment reach the daemon. Samples: DIR/samples-SIZE.tsv (seconds, round, VmRSS KiB, VmHWM
# KiB, threads). fsck.cowfs checks the image after each size. Exit 1 if anything failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

CACHES="16M,256M" ROUNDS=4 FSX_OPS=20000 META_OPS=60000 IMAGE_SIZE=4G
DIR="$ROOT/build/memory-tmp" COWFS_BIN="$ROOT/build/bin" EXTRA_OPTS="" KEEP="" UMOUNT_WAIT=120

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
need_arg() { [ $# -ge 2 ] || { echo "memory-bench: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
	case $1 in
	--cache) need_arg "$@"; CACHES=$2; shift ;;
	--rounds) need_arg "$@"; ROUNDS=$2; shift ;;
	--fsx-ops) need_arg "$@"; FSX_OPS=$2; shift ;;
	--meta-ops) need_arg "$@"; META_OPS=$2; shift ;;
	--image-size) need_arg "$@"; IMAGE_SIZE=$2; shift ;;
	--dir) need_arg "$@"; DIR=$2; shift ;;
	--cowfs-bin) need_arg "$@"; COWFS_BIN=$(cd "$2" && pwd); shift ;;
	--cowfs-opts) need_arg "$@"; EXTRA_OPTS=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "memory-bench: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || { echo "memory-bench: must run as root (mounts)" >&2; exit 2; }
FSX="$COWFS_BIN/../tests/fsx"
[ -x "$FSX" ] || { echo "memory-bench: $FSX not built (make build/tests/fsx)" >&2; exit 2; }

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
LOG="$DIR/bench.log"
log() { printf '[memory-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$LOG" >&2; }
record_rss() { :; }   # peers.sh's own RSS samples: this script samples every 0.5 s itself
COWFS_OPTS=""
# shellcheck source=../fsbench/peers.sh
. "$ROOT/bench/fsbench/peers.sh"

META_BIN="$ROOT/build/bench/meta-stress"
if [ ! -x "$META_BIN" ] || [ "$HERE/meta_stress.c" -nt "$META_BIN" ]; then
	mkdir -p "$(dirname "$META_BIN")"
	${CC:-cc} -O2 -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$META_BIN" "$HERE/meta_stress.c" ||
		{ log "cannot build $META_BIN"; exit 1; }
fi

SAMPLER=""
cleanup() {
	trap - EXIT INT TERM HUP
	[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null
	peer_teardown cowfs
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# sample PID FILE ROUNDFILE: every 0.5 s, "seconds round VmRSS VmHWM threads" until PID is gone.
sample() {
	local pid=$1 out=$2 roundfile=$3 start rss hwm thr
	start=$(date +%s.%N)
	while [ -r "/proc/$pid/status" ]; do
		read -r rss hwm thr < <(awk '/^VmRSS:/ {r = $2} /^VmHWM:/ {h = $2}
			/^Threads:/ {t = $2} END {print r, h, t}' "/proc/$pid/status" 2>/dev/null)
		[ -n "$rss" ] && printf '%.1f\t%s\t%s\t%s\t%s\n' \
			"$(echo "$(date +%s.%N) - $start" | bc)" "$(cat "$roundfile")" "$rss" "$hwm" "$thr" >>"$out"
		sleep 0.5
	done
}

# One round: 3 fsx and meta-stress at once on the mount. Returns non-zero if one failed.
run_round() {
	local mnt=$1 round=$2 pids=() i rc=0
	for i in 1 2 3; do
		mkdir -p "$mnt/fsx$i"
		"$FSX" -q -N "$FSX_OPS" -S $((round * 10 + i)) "$mnt/fsx$i" >"$DIR/fsx$i.out" 2>&1 &
		pids+=($!)
	done
	mkdir -p "$mnt/meta"
	"$META_BIN" -N "$META_OPS" -S "$round" "$mnt/meta" >"$DIR/meta.out" 2>&1 &
	pids+=($!)
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || rc=1
	done
	if [ $rc != 0 ]; then
		log "round $round failed:"
		tail -n 20 "$DIR"/fsx?.out "$DIR/meta.out" >&2
	fi
	rm -rf "$mnt"/fsx? "$mnt/meta"
	return $rc
}

mib() { echo "scale=1; $1 / 1024" | bc; }

# Per round: peak VmRSS while it ran, VmRSS at its end (the last sample), most threads.
report() {
	local size=$1 samples=$2 endrss=$3
	awk -v size="$size" -v ends="$endrss" '
		BEGIN { n = split(ends, e, " ") }
		{ if ($3 > peak[$2]) peak[$2] = $3; if ($5 > thr[$2]) thr[$2] = $5; if ($4 > hwm) hwm = $4 }
		END {
			printf "cache_size=%s\n", size
			printf "| round | peak RSS MiB | RSS at end MiB | threads |\n|---:|---:|---:|---:|\n"
			for (r = 1; r <= n; r++)
				printf "| %d | %.1f | %.1f | %d |\n", r, peak[r] / 1024, e[r] / 1024, thr[r]
			creep = n > 1 ? (e[n] - e[1]) / (n - 1) / 1024 : 0
			printf "peak (VmHWM) %.1f MiB; creep of the end-of-round RSS %+.1f MiB/round\n", hwm / 1024, creep
		}' "$samples"
}

run_size() {
	local size=$1 mnt pid samples round ends="" rc=0 rss
	COWFS_OPTS="cache_size=$size${EXTRA_OPTS:+,$EXTRA_OPTS}"
	peer_teardown cowfs
	mkdir -p "$(peer_mnt cowfs)"
	fuse_setup cowfs || { log "mount failed: $PEER_ERR"; return 1; }
	mnt=$(peer_mnt cowfs)
	pid=$(fuse_daemon_pids cowfs)
	samples="$DIR/samples-$size.tsv"
	: >"$samples"
	echo 0 >"$DIR/round"
	sample "$pid" "$samples" "$DIR/round" &
	SAMPLER=$!
	log "cache_size=$size: daemon $pid, options $COWFS_OPTS, $ROUNDS rounds of 3 x fsx -N $FSX_OPS + meta-stress -N $META_OPS"
	for ((round = 1; round <= ROUNDS; round++)); do
		echo "$round" >"$DIR/round"
		run_round "$mnt" "$round" || rc=1
		sleep 1
		rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
		ends+="$rss "
		log "round $round done: VmRSS $(mib "$rss") MiB"
	done
	fuse_umount cowfs || { log "unmount: $PEER_ERR"; rc=1; }
	kill "$SAMPLER" 2>/dev/null
	wait "$SAMPLER" 2>/dev/null
	SAMPLER=""
	FSCK_COWFS=1
	peer_teardown cowfs
	[[ "${FSCK_RESULT:-}" == "exit 0:"* ]] || rc=1
	report "$size" "$samples" "$ends"
	return $rc
}

status=0
IFS=, read -ra sizes <<<"$CACHES"
for s in "${sizes[@]}"; do
	run_size "$s" || status=1
done
exit $status
