# Shared helpers of the mount tests (bash; sourced, not run):
#
#   . tests/integ/lib.sh
#   lib_init NAME [--other-user UID]  # $WORK = fresh scratch dir under $COWFS_TEST_DIR, traps set
#                                   # (one UID can reach: under /tmp if COWFS_TEST_DIR is not)
#   lib_as_user UID CMD...          # CMD as that user (setpriv, no supplementary groups)
#   lib_reachable UID FILE          # prints FILE, or a copy in $WORK that UID can read and run
#   cowfs_mkfs IMG SIZE             # a fresh image
#   cowfs_mount IMG MNT [OPTS]      # mounts (the server daemonizes), waits until mounted
#   cowfs_umount MNT IMG            # unmounts, then waits until the daemon has exited
#   run_fsck IMG                    # fsck.cowfs, expecting exit 0
#   loop_fs TYPE DIR [OPTS]         # a fresh ext4/xfs/btrfs on a loop device, for comparisons
#   lib_sbin_helper                 # mount(8) runs this cowfs (a link in /sbin while the test runs)
#   cowfs_kill_remount IMG MNT      # kill -9 the daemon, fsck clean, mount again
#   lib_require_programs NAME       # exit 1 unless the programs are built
#   step NAME CMD...                # runs CMD, prints "PASS NAME" or "FAIL NAME", counts
#   run CMD...; expect_rc N, expect_out/expect_err TEXT, expect_no_out, expect_lines TEXT,
#   json_check PYTHON-EXPR...       # what the last run did
#   lib_summary                     # "NAME: N passed, N failed, N skipped"; returns 1 on failure
#
# Whatever happens (a failed step, set -e, Ctrl-C, kill), the EXIT trap unmounts what was mounted,
# kills the daemons still holding the images (by PID, found through /proc/PID/fd) and removes
# $WORK unless COWFS_KEEP=1 or something is still mounted below it.
#
# Environment: BIN (default build/bin), COWFS_TEST_DIR (default /tmp), COWFS_KEEP=1 keeps $WORK,
# COWFS_MOUNT_TIMEOUT (seconds to wait for a mount, default 30), COWFS_EXIT_TIMEOUT (seconds to
# wait for a daemon to exit after unmount, default 60).

BIN=${BIN:-build/bin}
MKFS=${MKFS:-$BIN/mkfs.cowfs}
FSCK=${FSCK:-$BIN/fsck.cowfs}
COWFS=${COWFS:-$BIN/cowfs}
TEST_ROOT=${COWFS_TEST_DIR:-/tmp}
MOUNT_TIMEOUT=${COWFS_MOUNT_TIMEOUT:-30}
EXIT_TIMEOUT=${COWFS_EXIT_TIMEOUT:-60}

LIB_NAME=test
LIB_MOUNTS=()    # mountpoints mounted here
LIB_IMAGES=()    # images served by a daemon started here
LIB_PASS=0
LIB_FAIL=0
LIB_SKIP=0
LIB_FAILED=()
WORK=

# Log of the last command run by `run`.
LIB_OUT=
LIB_ERR=
LIB_RC=0

lib_init() {
	LIB_NAME=$1
	local other_uid=
	[ "${2:-}" = --other-user ] && other_uid=$3
	mkdir -p "$TEST_ROOT"
	TEST_ROOT=$(cd "$TEST_ROOT" && pwd)
	WORK=$(mktemp -d "$TEST_ROOT/$LIB_NAME.XXXXXX")
	# Tests switch to a non-root user, who must be able to reach what is below.
	chmod 755 "$WORK"
	if [ -n "$other_uid" ] && ! lib_as_user "$other_uid" test -x "$WORK" 2>/dev/null; then
		# A checkout under a directory others cannot enter (/root, 0700): its mounts and
		# images would be out of that user's reach. A private directory under /tmp instead.
		rmdir "$WORK"
		WORK=$(mktemp -d "/tmp/cowfs-$LIB_NAME.XXXXXX")
		chmod 755 "$WORK"
		lib_log "uid $other_uid cannot reach $TEST_ROOT: working in $WORK"
	fi
	LIB_OUT=$WORK/.stdout
	LIB_ERR=$WORK/.stderr
	# A daemon's stderr is /dev/null once it detaches: sanitizer reports (SAN=1 builds) go to
	# files $WORK/sanitizer.PID instead, checked after every unmount (check_sanitizer_logs).
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$WORK/sanitizer"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$WORK/sanitizer:print_stacktrace=1"
	trap lib_cleanup EXIT
	trap 'echo "$LIB_NAME: interrupted" >&2; exit 130' INT TERM HUP
}

# lib_as_user UID CMD...: CMD as that user and group, without supplementary groups.
lib_as_user() {
	local uid=$1
	shift
	setpriv --reuid "$uid" --regid "$uid" --clear-groups "$@"
}

# lib_reachable UID FILE: FILE if that user can read it (and run it, if it is a program),
# else a copy in $WORK/bin (a build under a 0700 directory is out of its reach).
lib_reachable() {
	local uid=$1 f=$2 can=-r
	[ -x "$f" ] && can=-x
	if lib_as_user "$uid" test "$can" "$f" 2>/dev/null; then
		echo "$f"
		return 0
	fi
	mkdir -p "$WORK/bin" && chmod 755 "$WORK/bin" && cp "$f" "$WORK/bin/" &&
		chmod a+r "$WORK/bin/${f##*/}" && echo "$WORK/bin/${f##*/}"
}

lib_log() { echo "$LIB_NAME: $*"; }

# run CMD...: stdout to $LIB_OUT, stderr to $LIB_ERR, status to $LIB_RC; never fails itself.
run() {
	LIB_RC=0
	"$@" >"$LIB_OUT" 2>"$LIB_ERR" || LIB_RC=$?
}

# show_output [PREFIX]: the last run's output, indented (for a failure's diagnostics).
show_output() {
	sed -n '1,25s/^/    stdout: /p' "$LIB_OUT"
	sed -n '1,25s/^/    stderr: /p' "$LIB_ERR"
}

# ---- expectations on the last `run` (each prints why and the output when it fails) -------

expect_rc() {
	[ "$LIB_RC" -eq "$1" ] && return 0
	echo "    expected exit status $1, got $LIB_RC"
	show_output
	return 1
}

# expect_err TEXT: stderr contains TEXT (a fixed string)
expect_err() {
	grep -qF -- "$1" "$LIB_ERR" && return 0
	echo "    expected stderr to contain '$1'"
	show_output
	return 1
}

expect_out() {
	grep -qF -- "$1" "$LIB_OUT" && return 0
	echo "    expected stdout to contain '$1'"
	show_output
	return 1
}

expect_no_out() {
	[ ! -s "$LIB_OUT" ] && return 0
	echo "    expected no output on stdout"
	show_output
	return 1
}

# expect_lines TEXT: stdout is exactly TEXT (a newline at the end added)
expect_lines() {
	if ! diff -u <(printf '%s\n' "$1") "$LIB_OUT" >"$WORK/.diff"; then
		echo "    stdout differs from what is expected (- expected, + got):"
		sed 's/^/    /' "$WORK/.diff"
		return 1
	fi
}

# json_check PYTHON-EXPR...: stdout is one JSON document `d` and every expression is true.
# $LIB_JSON_HELPERS, when set, is Python run first (functions the expressions use on d).
json_check() {
	LIB_JSON_HELPERS=${LIB_JSON_HELPERS-} python3 - "$LIB_OUT" "$@" <<'PY'
import json, os, sys
try:
    d = json.load(open(sys.argv[1]))
except ValueError as e:
    print("    stdout is not one JSON document: %s" % e)
    print("    " + open(sys.argv[1]).read()[:2000])
    sys.exit(1)
exec(os.environ.get("LIB_JSON_HELPERS", ""))
bad = 0
for expr in sys.argv[2:]:
    try:
        ok = eval(expr)
    except Exception as e:
        ok = False
        print("    %s: %r" % (expr, e))
    if not ok:
        print("    not true: %s" % expr)
        bad = 1
if bad:
    print("    the document: " + json.dumps(d)[:3000])
sys.exit(bad)
PY
}

# step NAME CMD...: one test step; its own output is shown as it goes.
step() {
	local name=$1
	shift
	echo "---- $name"
	if "$@"; then
		LIB_PASS=$((LIB_PASS + 1))
		echo "PASS $name"
		return 0
	fi
	LIB_FAIL=$((LIB_FAIL + 1))
	LIB_FAILED+=("$name")
	echo "FAIL $name"
	return 1
}

skip_step() {
	LIB_SKIP=$((LIB_SKIP + 1))
	echo "SKIP $1: $2"
}

lib_summary() {
	local f
	for f in "${LIB_FAILED[@]}"; do
		echo "$LIB_NAME: failed: $f"
	done
	echo "$LIB_NAME: $LIB_PASS passed, $LIB_FAIL failed, $LIB_SKIP skipped"
	[ "$LIB_FAIL" -eq 0 ]
}

# ---- images and mounts ---------------------------------------------------------------------

abspath() { realpath -m -- "$1"; }

cowfs_mkfs() {
	local img=$1 size=$2
	run "$MKFS" -q -f -s "$size" "$img"
	if [ "$LIB_RC" -ne 0 ]; then
		echo "    mkfs.cowfs -s $size $img: exit $LIB_RC"
		show_output
		return 1
	fi
}

is_mounted() { findmnt -rn --mountpoint "$(abspath "$1")" >/dev/null 2>&1; }

# wait_mounted MNT [SECONDS]
wait_mounted() {
	local mnt=$1 t=$((${2:-$MOUNT_TIMEOUT} * 10))
	while [ $t -gt 0 ]; do
		is_mounted "$mnt" && return 0
		sleep 0.1
		t=$((t - 1))
	done
	return 1
}

# cowfs_pids IMG: the PIDs of the processes that have IMG open, one a line.
cowfs_pids() {
	local img
	img=$(abspath "$1")
	find /proc/[0-9]*/fd -maxdepth 1 -lname "$img" 2>/dev/null | cut -d/ -f3 | sort -un
}

# cowfs_mount IMG MNT [OPTS] [EXTRA-ARGS...]: mount and wait for the mount to show.
cowfs_mount() {
	local img mnt=$1 opts=${3:-}
	img=$(abspath "$1")
	mnt=$(abspath "$2")
	shift 2
	[ $# -gt 0 ] && shift
	mkdir -p "$mnt"
	LIB_IMAGES+=("$img")
	LIB_MOUNTS+=("$mnt")
	if [ -n "$opts" ]; then
		run timeout 120 "$COWFS" "$img" "$mnt" -o "$opts" "$@"
	else
		run timeout 120 "$COWFS" "$img" "$mnt" "$@"
	fi
	if [ "$LIB_RC" -ne 0 ]; then
		echo "    cowfs $img $mnt ${opts:+-o $opts} $*: exit $LIB_RC"
		show_output
		return 1
	fi
	if ! wait_mounted "$mnt"; then
		echo "    cowfs exited 0 but $mnt is not mounted after ${MOUNT_TIMEOUT}s"
		show_output
		return 1
	fi
	if [ -z "$(cowfs_pids "$img")" ]; then
		echo "    $mnt is mounted but no process has $img open"
		return 1
	fi
}

# wait_daemon_exit IMG [SECONDS]: until no process has IMG open; kills them (by PID) if not.
wait_daemon_exit() {
	local img=$1 t=$((${2:-$EXIT_TIMEOUT} * 10)) pids
	while [ $t -gt 0 ]; do
		pids=$(cowfs_pids "$img")
		[ -z "$pids" ] && return 0
		sleep 0.1
		t=$((t - 1))
	done
	echo "    the daemon(s) $(echo $pids) still hold $img ${2:-$EXIT_TIMEOUT}s after unmount: killing"
	kill -KILL $pids 2>/dev/null
	return 1
}

# cowfs_umount MNT IMG: unmount (retrying while busy), then wait for the daemon to exit.
cowfs_umount() {
	local mnt img i
	mnt=$(abspath "$1")
	img=$(abspath "$2")
	for i in 1 2 3 4 5 6 7 8 9 10; do
		is_mounted "$mnt" || break
		run fusermount3 -u "$mnt"
		[ "$LIB_RC" -eq 0 ] && break
		run umount "$mnt"
		[ "$LIB_RC" -eq 0 ] && break
		sleep 0.5
	done
	if is_mounted "$mnt"; then
		echo "    cannot unmount $mnt"
		show_output
		return 1
	fi
	wait_daemon_exit "$img" || return 1
	check_sanitizer_logs
}

# check_sanitizer_logs: fails, showing them, if sanitizer reports were written (then moves them
# aside so that each is reported once).
check_sanitizer_logs() {
	local f found=1
	for f in "$WORK"/sanitizer.*; do
		[ -e "$f" ] || continue
		found=0
		echo "    sanitizer report $f:"
		sed -n '1,40s/^/    | /p' "$f"
		mv "$f" "$WORK/reported.${f##*/}"
	done
	return $((1 - found))
}

# run_fsck IMG: fsck.cowfs must find it clean (exit 0).
run_fsck() {
	run "$FSCK" "$1"
	check_sanitizer_logs || return 1
	if [ "$LIB_RC" -ne 0 ]; then
		echo "    fsck.cowfs $1: exit $LIB_RC (expected 0)"
		show_output
		return 1
	fi
}

# loop_fs TYPE DIR [MOUNT OPTIONS]: a fresh TYPE filesystem (ext4, xfs, btrfs) on a loop device at DIR,
# its image $WORK/TYPE.img; unmounted by the EXIT trap (the loop device goes with the unmount).
# Needs root and mkfs.TYPE.
loop_fs() {
	local type=$1 dir=$2 opts=${3:-}
	[ "$(id -u)" -eq 0 ] && command -v "mkfs.$type" >/dev/null || return 1
	rm -f "$WORK/$type.img"
	truncate -s 512M "$WORK/$type.img" || return 1
	run "mkfs.$type" -q "$([ "$type" = ext4 ] && echo -F || echo -f)" "$WORK/$type.img"
	[ "$LIB_RC" -eq 0 ] || { show_output; return 1; }
	mkdir -p "$dir"
	LIB_MOUNTS+=("$(abspath "$dir")")
	mount -o "loop${opts:+,$opts}" "$WORK/$type.img" "$dir"
}

# lib_require_programs NAME: exit 1, saying which, unless mkfs.cowfs, fsck.cowfs and cowfs are
# built.
lib_require_programs() {
	local b
	for b in "$MKFS" "$FSCK" "$COWFS"; do
		[ -x "$b" ] || { echo "$1: $b is missing: build first (make all)" >&2; exit 1; }
	done
}

# cowfs_kill_remount IMG MNT: a power cut as far as the daemon can tell: SIGKILL to it, the dead
# mount taken down, fsck clean, then mounted again.
cowfs_kill_remount() {
	local img=$1 mnt=$2
	kill -KILL $(cowfs_pids "$img")
	wait_daemon_exit "$img" 10 || return 1
	cowfs_umount "$mnt" "$img" || return 1
	run_fsck "$img" || return 1
	cowfs_mount "$img" "$mnt"
}

# ---- ioctl_check (tests/integ/ioctl_check.c) -------------------------------------------------
# For scripts that set IC (the program), and IC_NONROOT and NONROOT_UID for another user.

# ic ARGS...: ioctl_check, output in $LIB_OUT; fails showing it unless it exits 0.
ic() {
	run "$IC" "$@"
	[ "$LIB_RC" -eq 0 ] && return 0
	echo "    ioctl_check $*: exit $LIB_RC"
	show_output
	return 1
}

# ic_as_nonroot ARGS...: the same as the unprivileged user.
ic_as_nonroot() {
	run lib_as_user "$NONROOT_UID" "$IC_NONROOT" "$@"
	[ "$LIB_RC" -eq 0 ] && return 0
	echo "    (uid $NONROOT_UID) ioctl_check $*: exit $LIB_RC"
	show_output
	return 1
}

# field NAME: NAME=VALUE from the last output.
field() { grep -o "\(^\| \)$1=[^ ]*" "$LIB_OUT" | head -1 | sed 's/^ //; s/^[^=]*=//'; }

expect() {
	[ "$2" = "$3" ] && return 0
	echo "    $1: got '$2', expected '$3'"
	return 1
}

# mount(8) runs /sbin/mount.fuse.cowfs (for mount -t fuse.cowfs, fstab, mount -o remount).
# lib_sbin_helper: make that the cowfs under test. Where nothing is installed there, a link to
# $COWFS for this run, removed at exit; an installed one is used only if it is $COWFS. Returns 1
# (saying why) when it cannot be.
LIB_SBIN_HELPER=
lib_sbin_helper() {
	local h=/sbin/mount.fuse.cowfs me
	me=$(realpath "$COWFS")
	if [ ! -e "$h" ] && [ ! -L "$h" ] && [ "$(id -u)" -eq 0 ] && ln -s "$me" "$h" 2>/dev/null; then
		LIB_SBIN_HELPER=$h
	fi
	[ "$(realpath "$h" 2>/dev/null)" = "$me" ] && return 0
	echo "    $h is another program ($(realpath "$h" 2>/dev/null || echo unreadable)): not used"
	return 1
}

lib_cleanup() {
	local rc=$? i mnt img pids left=0
	trap - EXIT INT TERM HUP
	for ((i = ${#LIB_MOUNTS[@]} - 1; i >= 0; i--)); do
		mnt=${LIB_MOUNTS[$i]}
		if is_mounted "$mnt"; then
			echo "$LIB_NAME: cleanup: unmounting $mnt" >&2
			fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null ||
				fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
		fi
	done
	[ -n "$LIB_SBIN_HELPER" ] && rm -f "$LIB_SBIN_HELPER"
	for img in "${LIB_IMAGES[@]}"; do
		pids=$(cowfs_pids "$img")
		[ -z "$pids" ] && continue
		# Give a daemon that is committing after its unmount a moment, then end it.
		for i in $(seq 50); do
			pids=$(cowfs_pids "$img")
			[ -z "$pids" ] && break
			sleep 0.1
		done
		[ -z "$pids" ] && continue
		echo "$LIB_NAME: cleanup: killing $(echo $pids) (still holding $img)" >&2
		kill -TERM $pids 2>/dev/null
		sleep 1
		pids=$(cowfs_pids "$img")
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
	done
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if findmnt -rn -o TARGET | grep -q "^$WORK/"; then
			echo "$LIB_NAME: cleanup: something is still mounted below $WORK: kept" >&2
			left=1
		fi
		if [ "${COWFS_KEEP:-0}" = 1 ] || [ $left = 1 ]; then
			echo "$LIB_NAME: kept $WORK" >&2
		else
			rm -rf --one-file-system "$WORK"
		fi
	fi
	exit $rc
}
