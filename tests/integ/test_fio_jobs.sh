#!/bin/bash
# The fio job files shipped for users (bench/jobs/) run on a cowfs mount: each one at a small
# size and a one-second runtime, fio exits 0 with no job error and moves the bytes it should,
# and the image is clean afterwards.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
JOBS=$(cd "$HERE/../../bench/jobs" && pwd)
lib_init fio_jobs

# fio's JSON: JOB_ERROR READ_BYTES WRITE_BYTES summed over jobs (group_reporting gives one).
fio_figures() {   # JSON
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
err = max(j["error"] for j in d["jobs"])
print(err, sum(j["read"]["io_bytes"] for j in d["jobs"]), sum(j["write"]["io_bytes"] for j in d["jobs"]))
' "$1"
}

# A job ran well: fio exit 0, no job error, and the direction(s) it should move moved bytes
# (sequential ones exactly SIZE).
job_ok() {   # JOB DIR
	local job=$1 dir=$2 out=$WORK/$1.json err rd wr
	DIR=$dir SIZE=16M RUNTIME=1 fio --output-format=json "$JOBS/$job" >"$out" 2>"$WORK/$job.err" ||
		{ lib_log "$job: fio failed: $(tail -n3 "$WORK/$job.err")"; return 1; }
	read -r err rd wr < <(fio_figures "$out") || return 1
	lib_log "$job: error $err, read $rd B, written $wr B"
	[ "$err" = 0 ] || return 1
	case $job in
	seqwrite.fio) [ "$wr" = 16777216 ] ;;
	fsync-append.fio) [ "$wr" -gt 0 ] && [ "$rd" = 0 ] ;;   # stops at RUNTIME or SIZE
	seqread.fio) [ "$rd" = 16777216 ] ;;
	randread*.fio) [ "$rd" -gt 0 ] && [ "$wr" = 0 ] ;;
	randwrite.fio) [ "$wr" -gt 0 ] && [ "$rd" = 0 ] ;;
	mixed.fio) [ "$rd" -gt 0 ] && [ "$wr" -gt 0 ] ;;
	*) lib_log "$job: no expectation for this job: add one"; return 1 ;;
	esac
}

IMG=$WORK/fio.img
MNT=$WORK/mnt
mkdir -p "$MNT"
step "mkfs" cowfs_mkfs "$IMG" 512M
step "mount" cowfs_mount "$IMG" "$MNT"
njobs=0
for f in "$JOBS"/*.fio; do
	job=$(basename "$f")
	njobs=$((njobs + 1))
	mkdir -p "$MNT/$job.d"
	step "fio job $job runs on cowfs" job_ok "$job" "$MNT/$job.d"
done
step "bench/jobs holds the seven documented jobs" test "$njobs" -eq 7
step "unmount" cowfs_umount "$MNT" "$IMG"
step "fsck clean after the jobs" run_fsck "$IMG"
lib_summary
