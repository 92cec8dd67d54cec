#!/usr/bin/env bash
# Integration tests of libcowfs-preload.so and cowfs-run (docs/PRELOAD.md) on real programs:
# cp --reflink=always, xfs_io reflink/dedupe/fiemap, filefrag -v, sync and sync -f, duperemove,
# and the corner cases of tests/integ/preload_check.c. Where the behaviour is the kernel's, the
# run through the shim on a cowfs mount is compared with the same run on xfs on a loop device;
# on xfs and tmpfs the same programs must behave exactly as they do without the shim.
#
#   bash tests/integ/test_preload.sh
#
# Environment: BIN (build/bin; the library is BIN/../lib/libcowfs-preload.so), COWFS_TEST_DIR
# (scratch), PRELOAD_CHECK (default BIN/../tests/preload_check), COWFS_KEEP=1.
#
# Root is needed for the xfs loop mount and tmpfs; without it (or without mkfs.xfs) the
# comparisons with xfs are skipped and say so.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

SHIM=$BIN/../lib/libcowfs-preload.so
RUN=$BIN/cowfs-run
PC=${PRELOAD_CHECK:-$BIN/../tests/preload_check}
# A program stuck on some other hung FUSE mount (xfs_io stats every mount) must not hang us.
T="timeout 300"

for b in "$MKFS" "$FSCK" "$COWFS" "$RUN" "$SHIM" "$PC"; do
	if [ ! -e "$b" ]; then
		echo "test_preload: $b is missing: build first (make build $PC)" >&2
		exit 1
	fi
done
for t in fusermount3 findmnt xfs_io filefrag cmp; do
	if ! command -v $t >/dev/null; then
		echo "test_preload: $t is missing (scripts/install-deps.sh)" >&2
		exit 1
	fi
done

NONROOT_UID=${COWFS_NONROOT_UID:-65534}
lib_init test_preload --other-user "$NONROOT_UID"
# What the non-root user runs: copies in $WORK if the build is out of its reach.
PC_NONROOT=$(lib_reachable "$NONROOT_UID" "$PC") &&
	SHIM_NONROOT=$(lib_reachable "$NONROOT_UID" "$(realpath "$SHIM")") || exit 1
IMG=$WORK/cowfs.img
MNT=$WORK/mnt
XFS=$WORK/xfs
TMPFS=$WORK/tmpfs
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86"
# SAN=1: preload_check has ASan, whose runtime wants to be first in the list of libraries; the
# shim (UBSan only, no allocator of its own) may be loaded before it.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86:verify_asan_link_order=0"

shim() { LD_PRELOAD=$(realpath "$SHIM") "$@"; }

# same_output A B: identical files, or the difference shown.
same_output() {
	if ! cmp -s "$1" "$2"; then
		echo "    $1 and $2 differ:"
		diff "$1" "$2" | sed -n '1,40s/^/    | /p'
		return 1
	fi
}

# ---- the other filesystems ------------------------------------------------------------------

HAVE_XFS=0
mount_others() {
	mkdir -p "$TMPFS" "$XFS"
	LIB_MOUNTS+=("$(abspath "$TMPFS")")
	mount -t tmpfs -o size=256m tmpfs "$TMPFS" || return 1
	if ! command -v mkfs.xfs >/dev/null; then
		echo "    no mkfs.xfs: the comparisons with xfs are skipped"
		return 0
	fi
	truncate -s 1G "$WORK/xfs.img"
	run mkfs.xfs -q -f -m reflink=1 "$WORK/xfs.img"
	[ "$LIB_RC" -eq 0 ] || { show_output; return 1; }
	LIB_MOUNTS+=("$(abspath "$XFS")")
	# allocsize=4k: no speculative preallocation past EOF to show up in FIEMAP (cowfs has none).
	mount -o loop,allocsize=4k "$WORK/xfs.img" "$XFS" || return 1
	HAVE_XFS=1
}

umount_others() {
	local rc=0
	umount "$TMPFS" || rc=1
	if [ $HAVE_XFS = 1 ]; then
		umount "$XFS" || rc=1
	fi
	return $rc
}

# ---- the library itself -----------------------------------------------------------------------

t_exports() {
	local syms
	syms=$(nm -D --defined-only "$SHIM" | awk '$2 == "T" { print $3 }' | sort | tr '\n' ' ')
	[ "$syms" = "ioctl sync syncfs " ] || { echo "    exported: $syms"; return 1; }
}

t_cowfs_run() {
	local out
	out=$("$RUN" sh -c 'echo "$LD_PRELOAD"') || return 1
	[ "$out" = "$(realpath "$SHIM")" ] || { echo "    LD_PRELOAD=$out"; return 1; }
	# A preload already there stays first.
	out=$(LD_PRELOAD=/lib/x86_64-linux-gnu/libc.so.6 "$RUN" sh -c 'echo "$LD_PRELOAD"')
	[ "$out" = "/lib/x86_64-linux-gnu/libc.so.6 $(realpath "$SHIM")" ] ||
		{ echo "    LD_PRELOAD=$out"; return 1; }
	run "$RUN" sh -c 'exit 7'
	[ "$LIB_RC" = 7 ] || { echo "    exit status $LIB_RC, not 7"; return 1; }
	run "$RUN" /nonexistent
	[ "$LIB_RC" = 127 ] || { echo "    missing command: $LIB_RC, not 127"; return 1; }
	run env COWFS_PRELOAD=/nonexistent.so "$RUN" true
	[ "$LIB_RC" = 125 ] || { echo "    missing library: $LIB_RC, not 125"; return 1; }
}

# ---- the same programs elsewhere: no change ------------------------------------------------

# errors_on DIR OTHER OUT [shim]: the preload_check corner cases in DIR.
errors_on() {
	local d=$1/errors
	rm -rf "$d" && mkdir -p "$d" "$2/errors.other"
	if [ "${4:-}" = shim ]; then
		shim $T "$PC" errors "$d" "$2/errors.other" >"$3" 2>&1
	else
		$T "$PC" errors "$d" "$2/errors.other" >"$3" 2>&1
	fi
	local rc=$?
	rm -rf "$d" "$2/errors.other"
	[ $rc -eq 0 ] || { echo "    preload_check errors $1: exit $rc"; tail -5 "$3"; return 1; }
}

t_errors_unchanged() {
	local fs=$1 other=$2
	errors_on "$fs" "$other" "$WORK/errors.$(basename "$fs").plain" || return 1
	errors_on "$fs" "$other" "$WORK/errors.$(basename "$fs").shim" shim || return 1
	same_output "$WORK/errors.$(basename "$fs").plain" "$WORK/errors.$(basename "$fs").shim"
}

# Physical offsets differ from run to run and filesystem to filesystem: replaced by P.
normalize_fiemap() {
	sed -E -e 's/^( *[0-9]+: \[[0-9]+\.\.[0-9]+\]: +)[0-9]+\.\.[0-9]+/\1P..P/' \
		-e 's/^( *[0-9]+: +[0-9]+\.\. +[0-9]+: +)[0-9]+\.\. +[0-9]+:/\1P..P:/' \
		-e 's/^Filesystem type is: .*/Filesystem type is: T/' -e 's/ +/ /g'
}

# programs_in DIR OUT [shim]: cp --reflink, xfs_io (reflink, dedupe, fpunch, fiemap), filefrag,
# sync -f in DIR, all output in OUT.
programs_in() {
	local d=$1/programs out=$2 pre=()
	[ "${3:-}" = shim ] && pre=(env LD_PRELOAD="$(realpath "$SHIM")")
	rm -rf "$d" && mkdir -p "$d" || return 1
	(
		cd "$d" || exit 1
		x() { echo "\$ $*"; "${pre[@]}" $T "$@" 2>&1; echo "exit $?"; }
		x xfs_io -f -c "pwrite -q -S 0x61 0 1m" -c fsync A
		x xfs_io -f -c "pwrite -q -S 0x61 0 1m" -c fsync C
		x xfs_io -f -c "pwrite -q -S 0x62 0 1m" -c fsync D
		x xfs_io -f -c "pwrite -q -S 0x63 0 64k" -c "pwrite -q -S 0x64 1m 64k" -c fsync H
		x xfs_io -f -c "reflink -q A 0 0 1m" -c "fiemap -v" B
		x xfs_io -c "dedupe -q A 0 0 1m" -c "fiemap -v" C
		x xfs_io -c "dedupe -q A 0 0 1m" D
		x xfs_io -c "reflink -q A 1 0 4096" B
		x xfs_io -c "reflink -q A 0 0 8m" B
		x xfs_io -c "fiemap -v" A
		x xfs_io -c "fiemap -v 0 4096" A
		x xfs_io -c "fiemap -v" H
		x xfs_io -f -c "reflink -q H 0 0 0" -c "fiemap -v" I
		# A hole punched in the middle of a file's one extent: two pieces, neither shared.
		x xfs_io -f -c "pwrite -q -S 0x65 0 1m" -c fsync -c "fpunch 256k 256k" -c fsync \
			-c "fiemap -v" P
		x filefrag -v P
		x filefrag -v B
		x filefrag D
		x cp --reflink=always A E
		x cmp A E
		x sync -f E
		x sync E
		ls -l | awk '{ print $1, $5, $9 }'
	) >"$out" 2>&1
	normalize_fiemap <"$out" >"$out.n"
	rm -rf "$d"
}

t_programs_unchanged() {
	local fs=$1 name
	name=$(basename "$fs")
	programs_in "$fs" "$WORK/programs.$name.plain" || return 1
	programs_in "$fs" "$WORK/programs.$name.shim" shim || return 1
	same_output "$WORK/programs.$name.plain.n" "$WORK/programs.$name.shim.n"
}

# cp_failure DIR PREFIX...: cp --reflink=always from tmpfs into DIR (EXDEV): its message, exit
# status and what it leaves behind, with DIR replaced by "DIR".
cp_failure() {
	rm -f "$1/cpdst"
	"${@:2}" cp --reflink=always "$TMPFS/cpsrc" "$1/cpdst" 2>&1 | sed "s|$1|DIR|g"
	echo "exit ${PIPESTATUS[0]}; left: $(stat -c %s "$1/cpdst" 2>&1 | sed "s|$1|DIR|g")"
	rm -f "$1/cpdst"
}

# cp --reflink=always across filesystems (EXDEV) leaves what coreutils leaves, shim or not.
t_cp_failure_unchanged() {
	local a b
	head -c 100000 /dev/urandom >"$TMPFS/cpsrc"
	a=$(cp_failure "$XFS" env)
	b=$(cp_failure "$XFS" shim)
	[ "$a" = "$b" ] || { echo "    without: $a"; echo "    with:    $b"; return 1; }
	echo "    $a"
}

# ---- on cowfs ---------------------------------------------------------------------------------

t_mount() { cowfs_mount "$IMG" "$MNT" commit=600; }
t_umount() { cowfs_umount "$MNT" "$IMG"; }

t_answers_file_id() {
	run "$PC" fileid "$MNT"
	[ "$LIB_RC" -eq 0 ] || { show_output; return 1; }
	sed 's/^/    /' "$LIB_OUT"
}

# Whether this tree's server serves the sharing ioctls at all (it did not before issue 11).
server_has_sharing_ioctls() { grep -q COWFS_IOC_FILE_ID "$HERE"/../../fuse/*.c 2>/dev/null; }

# The corner cases through the shim give what xfs gives, line for line; FIEMAP_FLAG_XATTR is
# EBADR as on btrfs (xfs maps its attribute fork, cowfs has no extents for xattrs).
t_errors_like_xfs() {
	errors_on "$MNT" "$TMPFS" "$WORK/errors.cowfs" shim || return 1
	grep -q '^fiemap xattr flag: EBADR flags=0x2 mapped=0$' "$WORK/errors.cowfs" ||
		{ echo "    $(grep '^fiemap xattr' "$WORK/errors.cowfs")"; return 1; }
	grep -v '^fiemap xattr flag' "$WORK/errors.cowfs" >"$WORK/errors.cowfs.cmp"
	grep -v '^fiemap xattr flag' "$WORK/errors.xfs.plain" >"$WORK/errors.xfs.cmp"
	same_output "$WORK/errors.xfs.cmp" "$WORK/errors.cowfs.cmp"
}

t_programs_like_xfs() {
	programs_in "$MNT" "$WORK/programs.cowfs" shim || return 1
	same_output "$WORK/programs.xfs.plain.n" "$WORK/programs.cowfs.n"
}

# stat_field N: field N of COWFS_IOC_STATS (1 clone_calls, 2 clone_bytes, 3 dedupe_calls,
# 4 dedupe_bytes_same).
stat_field() { "$PC" stats "$MNT" | awk -v n="$1" '{ print $n }'; }

expect_shared() {
	local got
	got=$(shim "$PC" shared "$1") || return 1
	[ "$got" = "$2" ] || { echo "    $1: $got bytes shared, expected $2"; return 1; }
}

t_cp_reflink() {
	local before after
	head -c 8388608 /dev/urandom >"$MNT/r.src"
	before=$(stat_field 2)
	"$RUN" cp --reflink=always "$MNT/r.src" "$MNT/r.dst" || return 1
	after=$(stat_field 2)
	cmp "$MNT/r.src" "$MNT/r.dst" || return 1
	[ $((after - before)) -eq 8388608 ] || { echo "    clone_bytes grew by $((after - before))"; return 1; }
	expect_shared "$MNT/r.src" 8388608 || return 1
	expect_shared "$MNT/r.dst" 8388608 || return 1
	"$RUN" filefrag -v "$MNT/r.dst" >"$WORK/filefrag.out" 2>&1 || { cat "$WORK/filefrag.out"; return 1; }
	grep -q shared "$WORK/filefrag.out" || { sed 's/^/    | /' "$WORK/filefrag.out"; return 1; }
	# Overwriting the copy leaves the original alone.
	printf 'changed' | dd of="$MNT/r.dst" bs=1 seek=4096 conv=notrunc status=none
	cmp -s "$MNT/r.src" "$MNT/r.dst" && { echo "    the copy did not change"; return 1; }
	cmp -n 4096 "$MNT/r.src" "$MNT/r.dst" || return 1
	rm -f "$MNT/r.src" "$MNT/r.dst"
}

# A 2.5 GiB file, sparse but with real data at its start, past 1 GiB, past 2 GiB and at its end.
t_cp_reflink_big() {
	local f=$MNT/big.src size=$((2560 << 20)) off data=0 shared
	rm -f "$f"
	for off in 0 $((1 << 30)) $(((2 << 30) + 4096)) $((size - (4 << 20))); do
		dd if=/dev/urandom of="$f" bs=1M count=4 seek=$off oflag=seek_bytes \
			conv=notrunc iflag=fullblock status=none || return 1
		data=$((data + (4 << 20)))
	done
	[ "$(stat -c %s "$f")" = $size ] || { echo "    size $(stat -c %s "$f")"; return 1; }
	"$RUN" cp --reflink=always "$f" "$MNT/big.dst" || return 1
	cmp "$f" "$MNT/big.dst" || return 1
	expect_shared "$MNT/big.dst" $data || return 1
	rm -f "$f" "$MNT/big.dst"
}

# cp --reflink=always from tmpfs (EXDEV): what coreutils does on xfs, it does on cowfs.
t_cp_failure_like_xfs() {
	local a b
	head -c 100000 /dev/urandom >"$TMPFS/cpsrc"
	a=$(cp_failure "$XFS" env)
	b=$(cp_failure "$MNT" shim)
	[ "$a" = "$b" ] || { echo "    xfs:   $a"; echo "    cowfs: $b"; return 1; }
	echo "    $a"
}

# A write, the given sync command, kill -9, remount: the data is there, and the sync committed.
sync_then_kill() {
	local name=$1 gen0 gen1
	shift
	head -c 3000000 /dev/urandom >"$WORK/$name.src"
	cp "$WORK/$name.src" "$MNT/$name" || return 1
	gen0=$("$PC" generation "$MNT") || return 1
	"$@" || { echo "    $*: failed"; return 1; }
	gen1=$("$PC" generation "$MNT") || return 1
	[ "$gen1" -gt "$gen0" ] || { echo "    generation $gen0 -> $gen1: nothing committed"; return 1; }
	kill -KILL $(cowfs_pids "$IMG")
	wait_daemon_exit "$IMG" 10 || return 1
	cowfs_umount "$MNT" "$IMG" || return 1
	run_fsck "$IMG" || return 1
	cowfs_mount "$IMG" "$MNT" commit=600 || return 1
	cmp "$WORK/$name.src" "$MNT/$name" || { echo "    $name is not intact"; return 1; }
	rm -f "$MNT/$name"
}

# Without the shim, syncfs and sync never reach the server (commit=600: no timer either).
t_sync_without_shim() {
	local gen0 gen1
	echo data >"$MNT/unshimmed"
	gen0=$("$PC" generation "$MNT")
	sync -f "$MNT/unshimmed" && sync
	gen1=$("$PC" generation "$MNT")
	[ "$gen1" = "$gen0" ] || { echo "    generation $gen0 -> $gen1 without the shim"; return 1; }
	rm -f "$MNT/unshimmed"
}

# duperemove 0.11 refuses any filesystem whose statfs f_type is not btrfs or xfs (docs/PRELOAD.md);
# the shim does not lie about the type, so it still refuses, and nothing is shared.
t_duperemove() {
	# Written twice, not copied: cp and cat would share the extents (copy_file_range).
	head -c 1000000 /dev/urandom >"$WORK/dup"
	dd if="$WORK/dup" of="$MNT/dup1" bs=64k status=none
	dd if="$WORK/dup" of="$MNT/dup2" bs=64k status=none
	expect_shared "$MNT/dup2" 0 || return 1
	"$RUN" $T duperemove -d "$MNT/dup1" "$MNT/dup2" >"$WORK/duperemove.out" 2>&1
	if grep -q "Can only dedupe files on btrfs or xfs" "$WORK/duperemove.out"; then
		expect_shared "$MNT/dup2" 0 || return 1
		echo "    $(grep -m1 'Can only dedupe' "$WORK/duperemove.out")"
	else
		# A duperemove without the check (or run as -d -d) dedupes through the shim.
		expect_shared "$MNT/dup2" 1000000 ||
			{ sed -n '1,20s/^/    | /p' "$WORK/duperemove.out"; return 1; }
	fi
	rm -f "$MNT/dup1" "$MNT/dup2"
}

# dedupe_perm_in DIR OUT [shim]: as a user without write access to some destinations.
dedupe_perm_in() {
	local d=$1/perm pre=()
	[ "${3:-}" = shim ] && pre=(env LD_PRELOAD="$SHIM_NONROOT")
	rm -rf "$d" && mkdir -p "$d" && chmod 755 "$d" || return 1
	head -c 8192 /dev/urandom >"$WORK/perm.data"
	for f in psrc p_root644 p_root666 p_own444; do
		dd if="$WORK/perm.data" of="$d/$f" status=none || return 1
	done
	chmod 644 "$d/psrc" "$d/p_root644"
	chmod 666 "$d/p_root666"
	chown "$NONROOT_UID" "$d/psrc" "$d/p_own444"
	chmod 444 "$d/p_own444"
	lib_as_user "$NONROOT_UID" "${pre[@]}" "$PC_NONROOT" dedupe-perm "$d" >"$2" 2>&1 ||
		{ cat "$2"; return 1; }
	rm -rf "$d"
}

# may_dedupe_file: read-only descriptors of files the caller owns or may write are fine, others
# EPERM, as on xfs.
t_dedupe_perm_like_xfs() {
	dedupe_perm_in "$XFS" "$WORK/perm.xfs" || return 1
	dedupe_perm_in "$MNT" "$WORK/perm.cowfs" shim || return 1
	grep -q "p_root644: ok \[1 x status=EPERM" "$WORK/perm.xfs" ||
		{ echo "    xfs: $(cat "$WORK/perm.xfs")"; return 1; }
	same_output "$WORK/perm.xfs" "$WORK/perm.cowfs"
}

# ---- the run ----------------------------------------------------------------------------------

step "the library exports ioctl, sync and syncfs only" t_exports
step "cowfs-run: LD_PRELOAD, exit statuses" t_cowfs_run
if ! step "tmpfs and an xfs loop mount to compare with" mount_others; then
	lib_summary
	exit 1
fi
step "tmpfs: preload_check corner cases the same with and without the shim" \
	t_errors_unchanged "$TMPFS" "$TMPFS"
step "tmpfs: cp, xfs_io, filefrag, sync the same with and without the shim" \
	t_programs_unchanged "$TMPFS"
if [ $HAVE_XFS = 1 ]; then
	step "xfs: preload_check corner cases the same with and without the shim" \
		t_errors_unchanged "$XFS" "$TMPFS"
	step "xfs: cp, xfs_io, filefrag, sync the same with and without the shim" \
		t_programs_unchanged "$XFS"
	step "xfs: a failed cp --reflink=always leaves the same, with and without the shim" \
		t_cp_failure_unchanged
fi

step "mkfs.cowfs -s 1G" cowfs_mkfs "$IMG" 1G || { lib_summary; exit 1; }
if step "mount -o commit=600" t_mount; then
	if ! server_has_sharing_ioctls && ! "$PC" fileid "$MNT" >/dev/null 2>&1; then
		skip_step "the tests on cowfs" \
			"this tree's server (fuse/) does not serve COWFS_IOC_FILE_ID yet"
	elif step "the mount answers COWFS_IOC_FILE_ID" t_answers_file_id; then
		if [ $HAVE_XFS = 1 ]; then
			step "cowfs: preload_check corner cases through the shim = xfs" t_errors_like_xfs
			step "cowfs: xfs_io, filefrag, cp, sync through the shim = xfs" \
				t_programs_like_xfs
			step "cowfs: a failed cp --reflink=always leaves what it leaves on xfs" \
				t_cp_failure_like_xfs
		else
			skip_step "cowfs compared with xfs" "no xfs loop mount"
		fi
		step "cp --reflink=always of 8 MiB: same bytes, shared, STATS, filefrag shared" t_cp_reflink
		step "cp --reflink=always of a 2.5 GiB file with data past 2 GiB" t_cp_reflink_big
		step "without the shim sync and syncfs commit nothing" t_sync_without_shim
		step "cowfs-run sync -f (syncfs), kill -9, remount: committed and there" \
			sync_then_kill syncfs_file "$RUN" sync -f "$MNT/syncfs_file"
		step "cowfs-run sync (sync), kill -9, remount: committed and there" \
			sync_then_kill sync_file "$RUN" sync
		step "syncfs(2) through the shim on a directory, kill -9, remount" \
			sync_then_kill syncfs_dir shim "$PC" syncfs "$MNT"
		step "duperemove -d through the shim: refused honestly (docs/PRELOAD.md)" t_duperemove
	fi
	step "unmount" t_umount
fi
if [ $HAVE_XFS = 1 ] && server_has_sharing_ioctls &&
	step "mount -o allow_other (others reach it)" cowfs_mount "$IMG" "$MNT" allow_other; then
	step "dedupe as uid $NONROOT_UID into files it may not write: EPERM, as on xfs" \
		t_dedupe_perm_like_xfs
	step "unmount" t_umount
fi
step "fsck.cowfs at the end" run_fsck "$IMG"
step "unmount tmpfs and xfs" umount_others
lib_summary
