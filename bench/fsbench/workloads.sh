# Workloads of the filesystem benchmark (../shared/PEER-FIGURES.md). Sourced by run.sh (bash).
# Each wl_STEP PEER runs one step on one mounted peer and records its metrics with record /
# record_err (run.sh). Every timed part starts cold (peer_cold: sync, unmount, drop_caches,
# mount); files a step needs are made, and files it leaves are removed, outside the timed part.
#
# Steps, in the order a round runs them (names for --workloads; "seqwrite", "randread" and
# "meta" are accepted as groups):
ALL_STEPS="seqwrite-psync seqwrite-uring seqread cp reflink randread-buf randread-direct randwrite meta fsync"

# Metrics each step records (the table rows; report.py knows their labels and units).
step_metrics() {
	case $1 in
	seqwrite-psync) echo seqwrite_psync ;;
	seqwrite-uring) echo seqwrite_uring ;;
	seqread) echo seqread ;;
	randread-buf) echo randread_buf ;;
	randread-direct) echo randread_direct ;;
	randwrite) echo randwrite_buf ;;
	meta) echo "create stat unlink" ;;
	fsync) echo "fsync_p50 fsync_p99" ;;
	cp) echo cp ;;
	reflink) echo reflink ;;
	esac
}

wdir() { printf '%s/fsbench' "$(peer_mnt "$1")"; }
datafile() { printf '%s/seq.dat' "$(wdir "$1")"; }

# Make the mount cold; on failure every metric of the step gets the error.
cold_or_fail() {   # PEER STEP [METRICS]
	peer_cold "$1" && { COLD_FAILS[$1]=0; return 0; }
	record_err "$1" "${3:-$(step_metrics "$2")}" "cold remount failed: $PEER_ERR"
	COLD_FAILS[$1]=$((${COLD_FAILS[$1]:-0} + 1))
	return 1
}

# fio on one file, JSON output into the raw directory. Sets FIO_JSON; returns fio's status.
# Common to every job: no preallocation (fio would fallocate the file by default; applications
# writing a new file do not), fio's own page-cache invalidation before the job left on.
run_fio() {   # PEER STEP FILE fio-args...
	local peer=$1 step=$2 file=$3
	shift 3
	FIO_JSON="$RAW/r${RUN}-${peer}-${step}.json"
	run_timed "$RAW/r${RUN}-${peer}-${step}.fio.err" \
		fio --name="$step" --filename="$file" --size="$SIZE" --fallocate=none \
		--output-format=json --output="$FIO_JSON" "$@"
}

# Record the fio result as METRIC (UNIT mib_s or iops).
fio_record() {   # PEER STEP RC METRIC UNIT
	local peer=$1 step=$2 rc=$3 metric=$4 unit=$5 out
	out=$(python3 "$HERE/report.py" fio "$FIO_JSON" "$unit" "$RAW/r${RUN}-${peer}-${step}.fio.err" "$rc" 2>&1)
	if [ $? -eq 0 ]; then
		record "$peer" "$metric" "$out" "$FIO_JSON"
	else
		record_err "$peer" "$metric" "$out" "$FIO_JSON"
	fi
}

# The SIZE data file the read, copy and random steps work on; written (untimed) if it is missing
# or has another size, e.g. when --workloads leaves out seqwrite.
ensure_datafile() {   # PEER STEP
	local peer=$1 f have
	f=$(datafile "$peer")
	mkdir -p "$(wdir "$peer")" 2>/dev/null
	have=$(stat -c %s "$f" 2>/dev/null || echo -1)
	[ "$have" = "$SIZE_BYTES" ] && return 0
	rm -f "$f"
	run_timed "$RAW/r${RUN}-${peer}-$2.prep.err" \
		fio --name=prep --filename="$f" --size="$SIZE" --fallocate=none --rw=write --bs=1M \
		--ioengine=psync --end_fsync=1 --output-format=json --output=/dev/null
	if [ $? -ne 0 ]; then
		record_err "$peer" "$(step_metrics "$2")" "writing the data file failed: $(tail -n1 "$RAW/r${RUN}-${peer}-$2.prep.err" 2>/dev/null)"
		return 1
	fi
}

# One fsbench-ops subcommand; prints its JSON line; returns its status.
run_ops() {   # PEER STEP ARGS...
	local peer=$1 step=$2 rc
	shift 2
	OPS_JSON="$RAW/r${RUN}-${peer}-${step}.json"
	run_timed "$RAW/r${RUN}-${peer}-${step}.err" "$OPS_BIN" "$@" >"$OPS_JSON"
	rc=$?
	[ -s "$OPS_JSON" ] || echo "{\"ok\": false, \"error\": \"fsbench-ops exit $rc: $(json_esc "$(tail -n1 "$RAW/r${RUN}-${peer}-${step}.err" 2>/dev/null)")\"}" >"$OPS_JSON"
	return $rc
}

# Record KEY of the ops JSON as METRIC, or its error.
ops_record() {   # PEER METRIC KEY
	local out
	out=$(python3 "$HERE/report.py" get "$OPS_JSON" "$3" 2>&1)
	if [ $? -eq 0 ]; then
		record "$1" "$2" "$out" "$OPS_JSON"
	else
		record_err "$1" "$2" "$out" "$OPS_JSON"
	fi
}

# ---------------------------------------------------------------- steps

# seqwrite: one new SIZE file, bs=1M, end_fsync=1 (the final fsync is inside fio's time).
wl_seqwrite() {   # PEER STEP ENGINE-ARGS...
	local peer=$1 step=$2 f rc
	shift 2
	f=$(datafile "$peer")
	mkdir -p "$(wdir "$peer")"
	rm -f "$f"
	cold_or_fail "$peer" "$step" || return
	run_fio "$peer" "$step" "$f" --rw=write --bs=1M --end_fsync=1 "$@"
	rc=$?
	fio_record "$peer" "$step" $rc "$(step_metrics "$step")" mib_s
}
wl_seqwrite-psync() { wl_seqwrite "$1" seqwrite-psync --ioengine=psync; }
wl_seqwrite-uring() { wl_seqwrite "$1" seqwrite-uring --ioengine=io_uring --iodepth=16; }

wl_seqread() {
	local peer=$1 rc
	ensure_datafile "$peer" seqread || return
	cold_or_fail "$peer" seqread || return
	run_fio "$peer" seqread "$(datafile "$peer")" --rw=read --bs=1M --ioengine=psync
	rc=$?
	fio_record "$peer" seqread $rc seqread mib_s
}

# 4 KiB random over the whole file, io_uring QD32, time-based (--runtime).
wl_random() {   # PEER STEP RW METRIC EXTRA...
	local peer=$1 step=$2 rw=$3 metric=$4 rc
	shift 4
	ensure_datafile "$peer" "$step" || return
	cold_or_fail "$peer" "$step" || return
	run_fio "$peer" "$step" "$(datafile "$peer")" --rw="$rw" --bs=4k --ioengine=io_uring \
		--iodepth=32 --runtime="$RUNTIME" --time_based "$@"
	rc=$?
	fio_record "$peer" "$step" $rc "$metric" iops
}
wl_randread-buf() { wl_random "$1" randread-buf randread randread_buf; }
wl_randread-direct() { wl_random "$1" randread-direct randread randread_direct --direct=1; }
wl_randwrite() { wl_random "$1" randwrite randwrite randwrite_buf; }

# cp: plain `cp` (coreutils decides: on btrfs/xfs it clones through copy_file_range) + fsync of
# the copy; reflink: `cp --reflink=always` + fsync of the copy. The copy is removed afterwards.
wl_copy() {   # PEER STEP [--reflink]
	local peer=$1 step=$2 dst
	dst="$(wdir "$peer")/copy.dat"
	ensure_datafile "$peer" "$step" || return
	rm -f "$dst"
	cold_or_fail "$peer" "$step" || return
	run_ops "$peer" "$step" cp "$(datafile "$peer")" "$dst" ${3:-}
	ops_record "$peer" "$step" secs
	rm -f "$dst"
}
wl_cp() { wl_copy "$1" cp; }
wl_reflink() { wl_copy "$1" reflink --reflink; }

# create / stat / unlink of NFILES empty files in one new directory; each phase starts cold.
wl_meta() {
	local peer=$1 d
	d="$(wdir "$peer")/meta"
	mkdir -p "$(wdir "$peer")"
	rm -rf "$d"
	if ! mkdir "$d" 2>/dev/null; then
		record_err "$peer" "create stat unlink" "mkdir $d failed"
		return
	fi
	cold_or_fail "$peer" meta || return
	run_ops "$peer" meta-create create "$d" "$NFILES"
	ops_record "$peer" create ops_per_s
	if ! grep -q '"ok": true' "$OPS_JSON"; then
		record_err "$peer" "stat unlink" "create failed"
		rm -rf "$d"
		return
	fi
	cold_or_fail "$peer" meta "stat unlink" || return
	run_ops "$peer" meta-stat stat "$d" "$NFILES"
	ops_record "$peer" stat ops_per_s
	cold_or_fail "$peer" meta unlink || return
	run_ops "$peer" meta-unlink unlink "$d" "$NFILES"
	ops_record "$peer" unlink ops_per_s
	rm -rf "$d"
}

# NFSYNCS x (append 4 KiB + fsync) to a new file; per-pair latency percentiles.
wl_fsync() {
	local peer=$1 f
	f="$(wdir "$peer")/fsync.dat"
	mkdir -p "$(wdir "$peer")"
	rm -f "$f"
	cold_or_fail "$peer" fsync || return
	run_ops "$peer" fsync fsync "$f" "$NFSYNCS" 4096
	ops_record "$peer" fsync_p50 p50_us
	ops_record "$peer" fsync_p99 p99_us
	rm -f "$f"
}
