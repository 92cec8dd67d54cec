#!/usr/bin/env bash
# Filesystem benchmark: cowfs (FUSE) and its peers -- kernel btrfs and xfs on loop devices,
# fuse2fs (ext4 through FUSE), zfs-fuse -- measured in the same run, interleaved, on the
# workloads of ../shared/PEER-FIGURES.md. Prints one markdown table with cowfs's ratio to each
# peer (>1 = cowfs better). Must run as root. See bench/README.md ("Filesystem peers").
#
#   bench/fsbench/run.sh [--quick] [--runs N] [--only PEERS] [--workloads STEPS] [--size S]
#                        [--runtime SEC] [--files N] [--fsyncs N] [--dir DIR] [--keep]
#                        [--cowfs-bin DIR] [--cowfs-opts OPTS] [--cowfs-cache MIB] [--no-install]
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

usage() {
	cat <<EOF
usage: $0 [options]
  --only PEERS        comma-separated subset of: cowfs,btrfs,xfs,fuse2fs,zfs-fuse (default: all)
  --workloads STEPS   comma-separated subset of: seqwrite-psync,seqwrite-uring,seqread,cp,reflink,
                      randread-buf,randread-direct,randwrite,meta,fsync (groups: seqwrite,
                      randread; default: all)
  --runs N            rounds, interleaved across peers; medians reported (default 1)
  --size S            data file size for fio and cp, K/M/G suffix (default 1G)
  --runtime SEC       seconds of each random-I/O job (default 20)
  --files N           files of the create/stat/unlink step (default 10000)
  --fsyncs N          append+fsync pairs of the fsync step (default 1000)
  --quick             smoke test: --size 128M --runtime 3 --files 2000 --fsyncs 200
                      (explicit options given after --quick override it)
  --dir DIR           scratch dir for images, mountpoints, results (default build/fsbench-tmp)
  --image-size S      size of every peer's sparse image file (default 4G)
  --keep              keep the images (zfs-fuse: export the pool instead of destroying it)
  --cowfs-bin DIR     where cowfs and mkfs.cowfs are (default build/bin)
  --cowfs-opts OPTS   mount options passed to cowfs as -o OPTS (default none)
  --cowfs-cache MIB   the cache size cowfs is configured with, for the RSS comparison
                      (default: cache_size= of --cowfs-opts, else BCACHE_DEFAULT_BYTES
                      from fs/io/bcache.h: 256)
  --step-timeout SEC  kill any single timed command after SEC seconds (default 1800)
  --no-install        do not apt-get install missing packages
EOF
}

# ---------------------------------------------------------------- options

ONLY="" STEPS="" RUNS=1 SIZE=1G RUNTIME=20 NFILES=10000 NFSYNCS=1000
DIR="$ROOT/build/fsbench-tmp" IMAGE_SIZE=4G KEEP="" COWFS_BIN="$ROOT/build/bin" COWFS_OPTS=""
COWFS_CACHE_MIB="" STEP_TIMEOUT=1800 NO_INSTALL="" UMOUNT_WAIT=120 QUICK=""

need_arg() { [ $# -ge 2 ] || { echo "fsbench: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
	case $1 in
	--only) need_arg "$@"; ONLY=$2; shift ;;
	--workloads) need_arg "$@"; STEPS=$2; shift ;;
	--runs) need_arg "$@"; RUNS=$2; shift ;;
	--size) need_arg "$@"; SIZE=$2; shift ;;
	--runtime) need_arg "$@"; RUNTIME=$2; shift ;;
	--files) need_arg "$@"; NFILES=$2; shift ;;
	--fsyncs) need_arg "$@"; NFSYNCS=$2; shift ;;
	--quick) QUICK=1 SIZE=128M RUNTIME=3 NFILES=2000 NFSYNCS=200 ;;
	--dir) need_arg "$@"; DIR=$2; shift ;;
	--image-size) need_arg "$@"; IMAGE_SIZE=$2; shift ;;
	--keep) KEEP=1 ;;
	--cowfs-bin) need_arg "$@"; COWFS_BIN=$2; shift ;;
	--cowfs-opts) need_arg "$@"; COWFS_OPTS=$2; shift ;;
	--cowfs-cache) need_arg "$@"; COWFS_CACHE_MIB=$2; shift ;;
	--step-timeout) need_arg "$@"; STEP_TIMEOUT=$2; shift ;;
	--no-install) NO_INSTALL=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "fsbench: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

to_bytes() {   # 1G, 128M, 4096, 64K -> bytes (binary units, as fio reads them)
	local n=${1%[kKmMgGtT]} u=${1: -1}
	[[ $n =~ ^[0-9]+$ ]] || return 1
	case $u in
	k | K) echo $((n << 10)) ;;
	m | M) echo $((n << 20)) ;;
	g | G) echo $((n << 30)) ;;
	t | T) echo $((n << 40)) ;;
	*) echo "$n" ;;
	esac
}
SIZE_BYTES=$(to_bytes "$SIZE") || { echo "fsbench: bad --size $SIZE" >&2; exit 2; }
IMAGE_BYTES=$(to_bytes "$IMAGE_SIZE") || { echo "fsbench: bad --image-size $IMAGE_SIZE" >&2; exit 2; }
for v in RUNS RUNTIME NFILES NFSYNCS STEP_TIMEOUT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "fsbench: bad value for $v: ${!v}" >&2; exit 2; }
done
[ "$SIZE_BYTES" -ge $((1 << 20)) ] || { echo "fsbench: --size must be at least 1M" >&2; exit 2; }
[ $((SIZE_BYTES * 5 / 2)) -le "$IMAGE_BYTES" ] ||
	{ echo "fsbench: --size $SIZE does not fit twice (file + copy) in a $IMAGE_SIZE image" >&2; exit 2; }

source "$HERE/peers.sh"
source "$HERE/workloads.sh"

PEERS=""
for p in ${ONLY//,/ }; do
	[[ " $ALL_PEERS " == *" $p "* ]] || { echo "fsbench: unknown peer $p (known: $ALL_PEERS)" >&2; exit 2; }
	[[ " $PEERS " == *" $p "* ]] || PEERS="$PEERS $p"
done
[ -n "$PEERS" ] || PEERS=" $ALL_PEERS"
# Columns always in the canonical order.
ordered=""
for p in $ALL_PEERS; do [[ " $PEERS " == *" $p "* ]] && ordered="$ordered $p"; done
PEERS=${ordered# }

SEL_STEPS=""
for s in ${STEPS//,/ }; do
	case $s in
	seqwrite) s="seqwrite-psync seqwrite-uring" ;;
	randread) s="randread-buf randread-direct" ;;
	create | stat | unlink) s=meta ;;
	esac
	for x in $s; do
		[[ " $ALL_STEPS " == *" $x "* ]] || { echo "fsbench: unknown workload $x (known: $ALL_STEPS)" >&2; exit 2; }
		SEL_STEPS="$SEL_STEPS $x"
	done
done
ordered=""
for s in $ALL_STEPS; do [[ -z "$SEL_STEPS" || " $SEL_STEPS " == *" $s "* ]] && ordered="$ordered $s"; done
SEL_STEPS=${ordered# }

if [ -z "$COWFS_CACHE_MIB" ] && [[ ",$COWFS_OPTS," =~ ,cache_size=([0-9]+[kKmMgG]?), ]]; then
	COWFS_CACHE_MIB=$(($(to_bytes "${BASH_REMATCH[1]}") >> 20))
fi
if [ -z "$COWFS_CACHE_MIB" ]; then
	COWFS_CACHE_MIB=$(sed -n 's/^#define BCACHE_DEFAULT_BYTES (\([0-9]*\)u << 20).*/\1/p' "$ROOT/fs/io/bcache.h" 2>/dev/null)
	[ -n "$COWFS_CACHE_MIB" ] || COWFS_CACHE_MIB=256
fi

[ "$(id -u)" -eq 0 ] || { echo "fsbench: must run as root (loop devices, mounts, drop_caches)" >&2; exit 1; }

mkdir -p "$DIR" || exit 1
DIR=$(cd "$DIR" && pwd)
case $DIR in /) echo "fsbench: refusing --dir /" >&2; exit 2 ;; esac
# Image paths end up in pgrep patterns: keep them free of regex characters that matter.
[[ $DIR =~ ^[A-Za-z0-9_./-]+$ ]] || { echo "fsbench: --dir must be a plain path ([A-Za-z0-9_./-])" >&2; exit 2; }
case $COWFS_BIN in /*) ;; *) COWFS_BIN="$PWD/$COWFS_BIN" ;; esac

exec 9>"$DIR/.lock"
flock -n 9 || { echo "fsbench: another run holds $DIR/.lock" >&2; exit 1; }

STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$DIR/results-$STAMP"
RAW="$OUT/raw"
mkdir -p "$RAW"
ln -sfn "results-$STAMP" "$DIR/latest"
RESULTS="$OUT/records.jsonl"
LOG="$OUT/fsbench.log"
: >"$RESULTS"

log() { printf '[fsbench %s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$LOG" >&2; }

json_esc() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	printf '%s' "$s" | tr '\000-\037' ' '
}

RUN=0
record() {   # PEER METRIC VALUE [RAW]
	printf '{"kind": "value", "run": %d, "peer": "%s", "metric": "%s", "value": %s, "raw": "%s"}\n' \
		"$RUN" "$1" "$2" "$3" "$(json_esc "${4:-}")" >>"$RESULTS"
	log "run $RUN  $1  $2 = $3"
}
record_err() {   # PEER "METRICS" MESSAGE [RAW]
	local m
	for m in $2; do
		printf '{"kind": "error", "run": %d, "peer": "%s", "metric": "%s", "error": "%s", "raw": "%s"}\n' \
			"$RUN" "$1" "$m" "$(json_esc "$3")" "$(json_esc "${4:-}")" >>"$RESULTS"
	done
	log "run $RUN  $1  $2: ERROR $3"
}
record_rss() {   # PEER STEP PID HWM_KIB RSS_KIB
	printf '{"kind": "rss", "run": %d, "peer": "%s", "step": "%s", "pid": %d, "hwm_kib": %d, "rss_kib": %d}\n' \
		"$RUN" "$1" "$2" "$3" "$4" "${5:-0}" >>"$RESULTS"
}
record_peer() {   # PEER STATUS NOTE
	printf '{"kind": "peer", "peer": "%s", "status": "%s", "note": "%s"}\n' \
		"$1" "$2" "$(json_esc "$3")" >>"$RESULTS"
}

# Run a command in the background and wait for it, so that a signal reaches our trap at once
# (bash runs traps only between foreground commands). stderr goes to ERRFILE. `timeout` puts the
# command in its own process group: Ctrl-C reaches us, and the cleanup stops the command.
CHILD=""
run_timed() {   # ERRFILE CMD...
	local err=$1 rc
	shift
	timeout --kill-after=10 "$STEP_TIMEOUT" "$@" 2>"$err" </dev/null 9>&- &
	CHILD=$!
	wait "$CHILD"
	rc=$?
	CHILD=""
	[ $rc -eq 124 ] && echo "timed out after ${STEP_TIMEOUT}s" >>"$err"
	return $rc
}

# ---------------------------------------------------------------- cleanup, always

CLEANED=""
cleanup() {
	trap '' INT TERM HUP
	[ -n "$CLEANED" ] && return
	CLEANED=1
	if [ -n "$CHILD" ] && pid_alive "$CHILD"; then
		log "stopping the running command (pid $CHILD)"
		stop_pids 10 "$CHILD"
	fi
	log "tearing down (unmount, detach loop devices, stop daemons${KEEP:+, keeping images})"
	local p left
	for p in $ALL_PEERS; do peer_teardown "$p"; done
	left=$(findmnt -rn -o TARGET | grep -F "$DIR/" || true)
	[ -z "$left" ] || log "WARNING: still mounted: $left"
	for p in $ALL_PEERS; do
		left=$(losetup --list -n -O NAME -j "$(peer_img "$p")" 2>/dev/null || true)
		[ -z "$left" ] || log "WARNING: loop device still attached: $left"
	done
	left=$(zfs_our_daemons)
	[ -z "$left" ] || log "WARNING: zfs-fuse daemon still running: $left"
}
on_signal() {
	log "interrupted by SIG$1: cleaning up"
	INTERRUPTED=1
	exit 130
}
trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

# ---------------------------------------------------------------- packages, helper

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

declare -A PEER_NA=() COLD_FAILS=()
ensure_packages() {
	local want="fio python3" missing="" p pk failed=""
	for p in $PEERS; do want="$want $(peer_packages "$p")"; done
	for pk in $want; do pkg_installed "$pk" || missing="$missing $pk"; done
	[ -n "$missing" ] || return 0
	if [ -n "$NO_INSTALL" ]; then
		failed=$missing
	else
		log "installing$missing (apt-get)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >>"$LOG" 2>&1
		if ! apt-get install -y -qq --no-install-recommends $missing >>"$LOG" 2>&1; then
			for pk in $missing; do
				apt-get install -y -qq --no-install-recommends "$pk" >>"$LOG" 2>&1 || failed="$failed $pk"
			done
		fi
	fi
	for pk in $failed; do
		for p in $PEERS; do
			[[ " $(peer_packages "$p") " == *" $pk "* ]] && PEER_NA[$p]="package $pk missing${NO_INSTALL:+ (--no-install)}"
		done
	done
}
ensure_packages
command -v fio >/dev/null || { log "fio is missing: cannot run"; exit 1; }
command -v python3 >/dev/null || { log "python3 is missing: cannot run"; exit 1; }

OPS_BIN="$ROOT/build/bench/fsbench-ops"
if [ ! -x "$OPS_BIN" ] || [ "$HERE/fsbench_ops.c" -nt "$OPS_BIN" ]; then
	mkdir -p "$(dirname "$OPS_BIN")"
	${CC:-cc} -O2 -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$OPS_BIN" "$HERE/fsbench_ops.c" ||
		{ log "cannot build $OPS_BIN"; exit 1; }
fi

# ---------------------------------------------------------------- set up

log "peers: $PEERS; steps: $SEL_STEPS"
log "runs $RUNS, size $SIZE, runtime ${RUNTIME}s, files $NFILES, fsyncs $NFSYNCS, images $IMAGE_SIZE in $DIR"
log "removing leftovers of earlier runs"
for p in $ALL_PEERS; do peer_teardown "$p"; done

LIVE=""
for p in $PEERS; do
	if [ -n "${PEER_NA[$p]:-}" ]; then
		log "$p: n/a (${PEER_NA[$p]})"
		continue
	fi
	log "$p: setting up"
	CUR_STEP=setup
	if ! peer_setup "$p"; then
		PEER_NA[$p]=$PEER_ERR
		log "$p: n/a ($PEER_ERR)"
		peer_teardown "$p"
		continue
	fi
	probe=$("$OPS_BIN" probe "$(peer_mnt "$p")" 2>&1)
	if [ $? -ne 0 ]; then
		PEER_NA[$p]="mounts, but the data path fails: $(python3 "$HERE/report.py" get - error <<<"$probe" 2>&1)"
		log "$p: n/a (${PEER_NA[$p]})"
		peer_teardown "$p"
		continue
	fi
	LIVE="$LIVE $p"
done
LIVE=${LIVE# }
for p in $PEERS; do
	if [ -n "${PEER_NA[$p]:-}" ]; then record_peer "$p" na "${PEER_NA[$p]}"; else record_peer "$p" ok ""; fi
done

# ---------------------------------------------------------------- rounds

live=($LIVE)
for ((RUN = 1; RUN <= RUNS; RUN++)); do
	for step in $SEL_STEPS; do
		CUR_STEP=$step
		n=${#live[@]}
		# Interleave: every step runs on every peer before the next step; the peer order rotates
		# from round to round so that no peer always goes first.
		for ((i = 0; i < n; i++)); do
			p=${live[$(((i + RUN - 1) % n))]}
			if [ "${COLD_FAILS[$p]:-0}" -ge 3 ]; then
				record_err "$p" "$(step_metrics "$step")" "skipped: the peer failed to remount 3 times"
				continue
			fi
			log "run $RUN/$RUNS  $step  $p"
			"wl_$step" "$p"
			sample_rss "$p" "after $step"
		done
	done
done
RUN=0

# ---------------------------------------------------------------- tear down, report

FSCK_RESULT=""
[[ " $LIVE " == *" cowfs "* ]] && FSCK_COWFS=1
cleanup
trap - EXIT

cat >"$OUT/meta.json" <<EOF
{"date": "$(date -Is)", "kernel": "$(uname -r)", "cores": $(nproc),
 "mem_mib": $(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo),
 "fio": "$(fio --version)", "coreutils": "$(cp --version | head -n1 | awk '{print $NF}')",
 "cowfs_rev": "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo -dirty)",
 "peers": "$PEERS", "steps": "$SEL_STEPS", "runs": $RUNS, "size": "$SIZE", "size_bytes": $SIZE_BYTES,
 "runtime_s": $RUNTIME, "files": $NFILES, "fsyncs": $NFSYNCS, "image_size": "$IMAGE_SIZE",
 "quick": ${QUICK:-0}, "cowfs_fsck": "$(json_esc "$FSCK_RESULT")", "cowfs_opts": "$(json_esc "$COWFS_OPTS")", "cowfs_cache_mib": $COWFS_CACHE_MIB,
 "versions": {$(for pk in btrfs-progs xfsprogs fuse2fs zfs-fuse fio; do printf '"%s": "%s", ' "$pk" "$(dpkg-query -W -f='${Version}' "$pk" 2>/dev/null)"; done)"_": ""}}
EOF
python3 "$HERE/report.py" table "$RESULTS" "$OUT/meta.json" "$OUT/results.json" "$OUT/results.md" || exit 1
cat "$OUT/results.md"
log "results: $OUT/results.md, $OUT/results.json (raw fio/ops output in $RAW)"
