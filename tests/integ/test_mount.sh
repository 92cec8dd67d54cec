#!/usr/bin/env bash
# Integration tests of the mounted filesystem: mkfs.cowfs, mount with `cowfs IMAGE MNT`, the
# POSIX conformance checks (tests/integ/posix_check.c), real programs (programs.sh), unmount,
# fsck, remount and persistence, permissions and ACLs as a non-root user with
# default_permissions,allow_other, read-only mounts, and the mounts that must be refused.
#
#   bash tests/integ/test_mount.sh [--big] [--no-programs] [--other-users]
#   BIN=build-san/bin COWFS_TEST_DIR=build-san/tmp bash tests/integ/test_mount.sh
#   TARGET_DIR=/mnt/ext4 bash tests/integ/test_mount.sh --dir-only
#
#   --big          for `make stress`: 400,000 fsx operations, fsx across unmount/fsck/remount
#                  cycles, a bigger image (posix_check's group "big", a 1 GiB file and a
#                  100,000-entry directory, runs always)
#   --no-programs  leave out programs.sh (tar/make, git, rsync, sqlite3)
#   --other-users  only the steps that act as the non-root user (posix_check's perm and acl
#                  groups, allow_other's permission checks), with mkfs, mounts and fsck around
#                  them (test_private_checkout.sh runs these from a checkout under 0700)
#   --dir-only     no image, no mount: run the checks that apply to a directory (posix_check,
#                  perm/acl groups, programs.sh, the persistence fixture written and read back)
#                  in TARGET_DIR, e.g. an ext4 or tmpfs mount, to validate the tests themselves
#
# Environment: BIN (build/bin), COWFS_TEST_DIR (scratch, default /tmp), POSIX_CHECK (a prebuilt
# posix_check; else BIN/../tests/posix_check if make built it and it is up to date; else it is
# built with cc into COWFS_TEST_DIR), COWFS_IMAGE_SIZE (default 2G, 4G
# with --big), COWFS_NONROOT_UID (default 65534), COWFS_KEEP=1 (keep the scratch directory),
# COWFS_POSIX_ARGS (more posix_check arguments, e.g. "--seed 5").
#
# Every step prints PASS/FAIL/SKIP; a failed step does not stop the others (the mount is
# unmounted and checked all the same). Exit status 1 if any step failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

BIG=0
PROGRAMS=1
DIR_ONLY=0
OTHER_USERS_ONLY=0
for a in "$@"; do
	case $a in
	--big) BIG=1 ;;
	--no-programs) PROGRAMS=0 ;;
	--other-users) OTHER_USERS_ONLY=1 ;;
	--dir-only) DIR_ONLY=1 ;;
	-h | --help)
		sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	*)
		echo "test_mount: unknown argument $a" >&2
		exit 2
		;;
	esac
done

NONROOT_UID=${COWFS_NONROOT_UID:-65534}
IMAGE_SIZE=${COWFS_IMAGE_SIZE:-$([ $BIG = 1 ] && echo 4G || echo 2G)}
POSIX_ARGS=(--nonroot-uid "$NONROOT_UID" --timeout 600 ${COWFS_POSIX_ARGS:-})
# The 1 GiB file and the 100,000-entry directory are acceptance tests: always run.
POSIX_ARGS+=(--group big)

if [ $DIR_ONLY = 1 ]; then
	if [ -z "${TARGET_DIR:-}" ] || [ ! -d "$TARGET_DIR" ]; then
		echo "test_mount: --dir-only needs TARGET_DIR=an existing directory" >&2
		exit 2
	fi
	TARGET_DIR=$(cd "$TARGET_DIR" && pwd)
else
	lib_require_programs test_mount
	for t in fusermount3 findmnt; do
		if ! command -v $t >/dev/null; then
			echo "test_mount: $t is missing (apt-get install fuse3 util-linux)" >&2
			exit 1
		fi
	done
fi

lib_init test_mount --other-user "$NONROOT_UID"
IMG=$WORK/cowfs.img
MNT=$WORK/mnt
MNT2=$WORK/mnt2
if [ $DIR_ONLY = 1 ]; then
	MNT=$TARGET_DIR
fi

# A sanitizer report exits with this instead of 1 (as test_tools.sh); lib_init sent the
# reports to files that every unmount and fsck checks.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86"

# ---- posix_check ---------------------------------------------------------------------------

build_posix_check() {
	if [ -n "${POSIX_CHECK:-}" ]; then
		[ -x "$POSIX_CHECK" ] && return 0
		echo "    POSIX_CHECK=$POSIX_CHECK is not an executable"
		return 1
	fi
	# The one `make` built (BUILD/tests/posix_check beside BUILD/bin), if up to date.
	POSIX_CHECK=$BIN/../tests/posix_check
	if [ -x "$POSIX_CHECK" ] && [ ! "$HERE/posix_check.c" -nt "$POSIX_CHECK" ]; then
		echo "    using $POSIX_CHECK"
		return 0
	fi
	POSIX_CHECK=$TEST_ROOT/posix_check
	if [ ! -x "$POSIX_CHECK" ] || [ "$HERE/posix_check.c" -nt "$POSIX_CHECK" ]; then
		run ${CC:-cc} -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -o "$POSIX_CHECK.$$" \
			"$HERE/posix_check.c" -lpthread
		if [ "$LIB_RC" -ne 0 ]; then
			show_output
			rm -f "$POSIX_CHECK.$$"
			return 1
		fi
		mv "$POSIX_CHECK.$$" "$POSIX_CHECK"
	fi
}

# posix DIR ARGS...: posix_check, its output shown (the ok lines summarized).
posix() {
	local dir=$1 rc=0 log
	shift
	log=$(mktemp "$WORK/posix.XXXXXX")
	timeout 1800 "$POSIX_CHECK" "$dir" "${POSIX_ARGS[@]}" "$@" >"$log" 2>&1 || rc=$?
	grep -v '^ok ' "$log" | sed 's/^/    /'
	echo "    ($(grep -c '^ok ' "$log") checks ok)"
	[ $rc -eq 0 ]
}

# ---- the persistence fixture ---------------------------------------------------------------

# make_fixture DIR: files of every kind with known content, times and modes, then the manifest.
make_fixture() {
	local d=$1/persist i
	rm -rf "$d"
	mkdir -p "$d/sub/deep" "$d/many" "$d/xattr" || return 1
	head -c 3000000 /dev/urandom >"$d/random.bin"
	printf 'hello\n' >"$d/hello.txt"
	chmod 0640 "$d/hello.txt"
	ln "$d/hello.txt" "$d/sub/hardlink"
	ln -s ../hello.txt "$d/sub/symlink"
	ln -s "$(printf 'x%.0s' $(seq 1000))" "$d/sub/longlink"
	truncate -s 100M "$d/sparse"
	printf 'end' | dd of="$d/sparse" bs=1 seek=$((60 << 20)) conv=notrunc status=none
	mkfifo "$d/fifo"
	for i in $(seq 1 300); do echo "$i" >"$d/many/f$i"; done
	rm "$d/many/f7" "$d/many/f150"
	echo "moved" >"$d/renamed_from"
	mv "$d/renamed_from" "$d/sub/deep/renamed_to"
	printf 'truncated' >"$d/trunc"
	truncate -s 4 "$d/trunc"
	chmod 4755 "$d/sub/deep/renamed_to"
	chmod 1777 "$d/many"
	echo x >"$d/xattr/f"
	python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.cowfs", b"persisted value")' \
		"$d/xattr/f" 2>/dev/null || true
	touch -d '2001-02-03 04:05:06.123456789' "$d/random.bin"
	touch -h -d '1969-07-20 20:17:40.5' "$d/sub/symlink"
	touch -d '2040-01-01 00:00:00.000000001' "$d/sub/deep"
	manifest "$1" >"$WORK/manifest" || return 1
}

# manifest DIR: every entry's type, mode, links, owner, size, mtime (ns), symlink target,
# content checksum and user.cowfs xattr. The fixture's own directory's times are left out.
manifest() {
	(cd "$1/persist" &&
		find . -mindepth 1 -printf '%y %m %n %U:%G %s %T@ %p -> %l\n' | LC_ALL=C sort &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum &&
		python3 -c 'import os; print(os.getxattr("xattr/f", "user.cowfs"))' 2>&1)
}

verify_fixture() {
	manifest "$1" >"$WORK/manifest.now" || return 1
	if ! cmp -s "$WORK/manifest" "$WORK/manifest.now"; then
		echo "    the files differ from what was written:"
		diff "$WORK/manifest" "$WORK/manifest.now" | head -30 | sed 's/^/    | /'
		return 1
	fi
}

# ---- steps ---------------------------------------------------------------------------------

t_mkfs() { cowfs_mkfs "$IMG" "$IMAGE_SIZE"; }

t_mount() { cowfs_mount "$IMG" "$MNT" "${1:-}"; }

t_umount() { cowfs_umount "$MNT" "$IMG"; }

t_fsck() { run_fsck "$IMG"; }

t_proc_mounts() {
	local src type
	src=$(findmnt -rn -o SOURCE --mountpoint "$MNT")
	type=$(findmnt -rn -o FSTYPE --mountpoint "$MNT")
	grep -q " $MNT " /proc/mounts || { echo "    $MNT is not in /proc/mounts"; return 1; }
	[ "$src" = "$IMG" ] || { echo "    source is '$src', expected '$IMG'"; return 1; }
	[ "$type" = fuse.cowfs ] || { echo "    type is '$type', expected fuse.cowfs"; return 1; }
}

# The kernel's read-ahead on the mount is raised to readahead= (default 1 MiB) by the first open.
t_readahead() {
	local dev kb
	: >"$MNT/ra-probe" && cat "$MNT/ra-probe" >/dev/null && rm -f "$MNT/ra-probe"
	dev=$(findmnt -rn -o MAJ:MIN --mountpoint "$MNT")
	kb=$(cat "/sys/class/bdi/$dev/read_ahead_kb" 2>/dev/null)
	[ "$kb" = 1024 ] || { echo "    read_ahead_kb of $dev is '$kb', expected 1024"; return 1; }
}

# -o max_read=4096 reaches the kernel (libfuse 3.14 refused the connection unless the server's
# init repeated it) and reads in requests that small still return every byte.
t_max_read() {
	findmnt -rn -o OPTIONS --mountpoint "$MNT" | grep -q 'max_read=4096' ||
		{ echo "    max_read=4096 not in the mount's options"; return 1; }
	head -c $((3 << 20)) /dev/urandom >"$WORK/max_read.src" &&
		cp "$WORK/max_read.src" "$MNT/max_read" && sync "$MNT/max_read" || return 1
	echo 3 >/proc/sys/vm/drop_caches
	cmp "$WORK/max_read.src" "$MNT/max_read" && rm -f "$MNT/max_read"
}

# Bad options: refused by name before anything is opened or mounted.
t_bad_options_refused() {
	local o
	mkdir -p "$MNT2"
	for o in commit=soon cache_size=12Q cache_size=1K readahead=1G readahead=-1 bogus \
		 fsname=other subtype=ext4 max_read=100 max_read=4k; do
		run timeout 60 "$COWFS" -o "$o" "$IMG" "$MNT2"
		if [ "$LIB_RC" -eq 0 ] || is_mounted "$MNT2"; then
			echo "    -o $o: exit $LIB_RC, mounted: $(is_mounted "$MNT2" && echo yes || echo no)"
			LIB_MOUNTS+=("$MNT2")
			return 1
		fi
		grep -qE "(bad|unknown) mount option '${o%%=*}" "$LIB_ERR" ||
			{ echo "    -o $o: no clear message"; show_output; return 1; }
	done
	sed -n '1s/^/    e.g.: /p' "$LIB_ERR"
}

t_second_mount_refused() {
	mkdir -p "$MNT2"
	run timeout 120 "$COWFS" "$IMG" "$MNT2"
	if [ "$LIB_RC" -eq 0 ]; then
		echo "    a second mount of the mounted image exited 0"
		LIB_MOUNTS+=("$MNT2")
		cowfs_umount "$MNT2" "$IMG" >/dev/null
		return 1
	fi
	if is_mounted "$MNT2"; then
		echo "    $MNT2 is mounted after a refused mount"
		LIB_MOUNTS+=("$MNT2")
		return 1
	fi
	if ! grep -qiE 'in use|already|busy|locked' "$LIB_ERR"; then
		echo "    no clear message (in use/already/busy/locked) on stderr"
		show_output
		return 1
	fi
	sed -n '1,3s/^/    message: /p' "$LIB_ERR"
	# The first mount still works.
	echo still >"$MNT/still-there" && [ "$(cat "$MNT/still-there")" = still ] &&
		rm "$MNT/still-there"
}

t_zeros_refused() {
	local z=$WORK/zeros.img
	truncate -s 64M "$z"
	mkdir -p "$MNT2"
	LIB_IMAGES+=("$(abspath "$z")")
	run timeout 60 "$COWFS" "$z" "$MNT2"
	if [ "$LIB_RC" -eq 0 ] || is_mounted "$MNT2"; then
		echo "    mounting 64 MiB of zeros: exit $LIB_RC, mounted: $(is_mounted "$MNT2" && echo yes || echo no)"
		LIB_MOUNTS+=("$MNT2")
		return 1
	fi
	if ! grep -qi 'not a cowfs' "$LIB_ERR"; then
		echo "    no 'not a cowfs image' on stderr"
		show_output
		return 1
	fi
	sed -n '1,2s/^/    message: /p' "$LIB_ERR"
	[ -z "$(cowfs_pids "$z")" ] || { echo "    a process still holds $z"; return 1; }
	# Nothing written into it.
	[ "$(stat -c %s "$z")" -eq $((64 << 20)) ] && cmp -s -n $((64 << 20)) "$z" /dev/zero ||
		{ echo "    the zeros image was written to"; return 1; }
	rm -f "$z"
	local missing=$WORK/no-such.img
	run timeout 60 "$COWFS" "$missing" "$MNT2"
	[ "$LIB_RC" -ne 0 ] && ! is_mounted "$MNT2" && [ ! -e "$missing" ] ||
		{ echo "    mounting a missing image: exit $LIB_RC"; return 1; }
}

# as_nonroot CMD...: run a shell command line as the non-root user.
as_nonroot() { lib_as_user "$NONROOT_UID" "$@"; }

# allow_other alone: the daemon checks no permissions of its own, so cowfs turns on the
# kernel's (default_permissions); another user is kept out of a 0700 directory and a 0600 file.
t_allow_other_checks_permissions() {
	local d=$MNT/private
	grep " $(abspath "$MNT") " /proc/mounts | grep -q default_permissions ||
		{ echo "    allow_other without default_permissions in /proc/mounts"; return 1; }
	mkdir -p "$d" && echo secret >"$d/f" && chmod 600 "$d/f" && chmod 700 "$d" || return 1
	as_nonroot cat "$d/f" >/dev/null 2>&1 && { echo "    another user read a 0600 file"; return 1; }
	as_nonroot touch "$d/new" 2>/dev/null && { echo "    another user wrote in a 0700 dir"; return 1; }
	chmod 755 "$d" && chmod 644 "$d/f" || return 1
	[ "$(as_nonroot cat "$d/f")" = secret ] || { echo "    another user cannot read a 0644 file"; return 1; }
	rm -rf "$d"
}

t_ro() {
	local d=$MNT/persist out e
	# Reading works.
	verify_fixture "$MNT" || return 1
	# Every kind of change is EROFS.
	for e in "touch $d/new" "mkdir $d/newdir" "rm $d/hello.txt" "mv $d/hello.txt $d/h2" \
		"chmod 600 $d/hello.txt" "ln -s x $d/newlink" "truncate -s 0 $d/hello.txt" \
		"ln $d/hello.txt $d/h3" "rmdir $d/sub/deep" "touch -d 2000-01-01 $d/hello.txt"; do
		out=$(eval "$e" 2>&1) && { echo "    '$e' worked on a ro mount"; return 1; }
		case $out in
		*"Read-only file system"*) ;;
		*) echo "    '$e': '$out', expected 'Read-only file system'"; return 1 ;;
		esac
	done
	out=$( (echo more >>"$d/hello.txt") 2>&1) && { echo "    appending worked"; return 1; }
	case $out in *"Read-only file system"*) ;; *) echo "    append: $out"; return 1 ;; esac
	python3 - "$d/hello.txt" <<-'EOF' || return 1
		import errno, os, sys
		try:
		    os.setxattr(sys.argv[1], "user.x", b"1")
		except OSError as e:
		    if e.errno == errno.EROFS:
		        sys.exit(0)
		    print("    setxattr:", e)
		    sys.exit(1)
		print("    setxattr worked on a ro mount")
		sys.exit(1)
	EOF
	findmnt -rn -o OPTIONS --mountpoint "$MNT" | grep -qE '(^|,)ro(,|$)' ||
		{ echo "    the mount options do not say ro"; return 1; }
}

t_ro_unchanged() {
	# The read-only mount wrote nothing: the superblocks are as before.
	"$COWFS" dump --super "$IMG" >"$WORK/super.after" 2>&1
	cmp -s "$WORK/super.before" "$WORK/super.after" || {
		echo "    the superblock changed during a ro mount:"
		diff "$WORK/super.before" "$WORK/super.after" | head -10 | sed 's/^/    | /'
		return 1
	}
}

# A small filesystem filled up: ENOSPC, then the space comes back after rm, fsck is clean.
t_enospc() {
	local img=$WORK/small.img mnt=$WORK/small out avail i
	cowfs_mkfs "$img" 128M || return 1
	cowfs_mount "$img" "$mnt" || return 1
	out=$(head -c 512M /dev/urandom 2>&1 >"$mnt/fill") &&
		{ echo "    wrote 512 MiB into a 128 MiB filesystem"; return 1; }
	case $out in
	*"No space left on device"*) ;;
	*) echo "    writing past the end: '$out', expected 'No space left on device'"; return 1 ;;
	esac
	# Full: reads and metadata still work (or fail with ENOSPC), nothing hangs or crashes.
	ls -l "$mnt" >/dev/null || return 1
	mkdir "$mnt/d" 2>/dev/null
	rm -f "$mnt/fill" || return 1
	rmdir "$mnt/d" 2>/dev/null
	# The space comes back (allow for a commit).
	for i in $(seq 150); do
		sync
		avail=$(stat -f -c '%a * %S' "$mnt")
		[ $((avail)) -ge $((64 << 20)) ] && break
		sleep 0.1
	done
	[ $((avail)) -ge $((64 << 20)) ] ||
		{ echo "    only $((avail)) bytes available after rm of the file that filled it"; return 1; }
	head -c 32M /dev/urandom >"$mnt/again" && sync || return 1
	cowfs_umount "$mnt" "$img" || return 1
	run_fsck "$img" || return 1
	rm -f "$img"
}

# A transaction that fails after it changed something is aborted (DESIGN §5): with a failure
# injected into the 3rd tree step after the mount (COWFS_FAULT_INJECT), a create fails with
# EIO, every update from then on with EROFS, reads show the last commit, `cowfs status` says
# why; after the unmount fsck is clean and a remount shows the last commit, writable again.
t_abort() {
	local img=$WORK/abort.img mnt=$WORK/abort out
	cowfs_mkfs "$img" 128M || return 1
	cowfs_mount "$img" "$mnt" || return 1
	echo "committed" >"$mnt/keep" || return 1
	out=$("$COWFS" status --json "$mnt") || { echo "    status: $out"; return 1; }
	case $out in *'"state":"ok"'*) ;; *) echo "    status of a sound mount: $out"; return 1 ;; esac
	cowfs_umount "$mnt" "$img" || return 1
	COWFS_FAULT_INJECT=3:5 cowfs_mount "$img" "$mnt" || return 1
	out=$(touch "$mnt/new" 2>&1) && { echo "    the create with a failure injected succeeded"; return 1; }
	case $out in *"Input/output error"*) ;; *) echo "    create: '$out', expected EIO"; return 1 ;; esac
	out=$(mkdir "$mnt/d" 2>&1) && { echo "    mkdir after the abort succeeded"; return 1; }
	case $out in *"Read-only file system"*) ;; *) echo "    mkdir: '$out', expected EROFS"; return 1 ;; esac
	[ "$(cat "$mnt/keep")" = committed ] || { echo "    the committed file reads wrong"; return 1; }
	[ ! -e "$mnt/new" ] || { echo "    the aborted create shows"; return 1; }
	out=$("$COWFS" status "$mnt") && { echo "    status exits 0 after an abort"; return 1; }
	case $out in
	*aborted*"Input/output error"*"read-only at generation"*) ;;
	*) echo "    status after the abort: $out"; return 1 ;;
	esac
	out=$("$COWFS" status --json "$mnt/keep")
	case $out in *'"state":"aborted"'*'"errno":5'*) ;; *) echo "    status --json: $out"; return 1 ;; esac
	cowfs_umount "$mnt" "$img" || return 1
	run_fsck "$img" || return 1
	cowfs_mount "$img" "$mnt" || return 1
	[ "$(cat "$mnt/keep")" = committed ] && [ ! -e "$mnt/new" ] ||
		{ echo "    the remount does not show the last commit"; return 1; }
	touch "$mnt/new" || return 1
	cowfs_umount "$mnt" "$img" || return 1
	run_fsck "$img" || return 1
	rm -f "$img"
}

# SIGTERM to the daemon: it unmounts, commits what was written (no fsync) and exits.
t_sigterm() {
	local pids
	cowfs_mount "$IMG" "$MNT" || return 1
	echo "before sigterm" >"$MNT/sigterm.txt"
	pids=$(cowfs_pids "$IMG")
	kill -TERM $pids || return 1
	wait_daemon_exit "$IMG" 30 || return 1
	if is_mounted "$MNT"; then
		echo "    still mounted after the daemon got SIGTERM and exited"
		return 1
	fi
	check_sanitizer_logs || return 1
	run_fsck "$IMG" || return 1
	cowfs_mount "$IMG" "$MNT" || return 1
	[ "$(cat "$MNT/sigterm.txt" 2>&1)" = "before sigterm" ] ||
		{ echo "    what was written before SIGTERM is gone"; return 1; }
	rm "$MNT/sigterm.txt"
	cowfs_umount "$MNT" "$IMG"
}

# SIGKILL to the daemon: the mount is dead, the image is consistent (fsck clean), what was
# fsync'd is there after a remount, and an open-unlinked file's space is not leaked.
t_sigkill() {
	local pids held
	cowfs_mount "$IMG" "$MNT" || return 1
	head -c 5000000 /dev/urandom >"$WORK/synced.src"
	cp "$WORK/synced.src" "$MNT/synced" || return 1
	python3 - "$MNT" <<-'EOF' || return 1
		import os, sys
		d = sys.argv[1]
		fd = os.open(d + "/synced", os.O_RDONLY)
		os.fsync(fd)
		os.close(fd)
		fd = os.open(d, os.O_RDONLY)
		os.fsync(fd)
		os.close(fd)
	EOF
	echo "not synced" >"$MNT/unsynced"
	exec {held}>"$MNT/orphan" || return 1
	head -c 1000000 /dev/urandom >&$held
	rm "$MNT/orphan"
	pids=$(cowfs_pids "$IMG")
	kill -KILL $pids
	exec {held}>&-
	wait_daemon_exit "$IMG" 10 || return 1
	cowfs_umount "$MNT" "$IMG" || return 1
	run_fsck "$IMG" || return 1
	cowfs_mount "$IMG" "$MNT" || return 1
	cmp "$WORK/synced.src" "$MNT/synced" || { echo "    the fsync'd file is not intact"; return 1; }
	[ ! -e "$MNT/orphan" ] || { echo "    the unlinked file is back"; return 1; }
	rm -f "$MNT/synced" "$MNT/unsynced"
	cowfs_umount "$MNT" "$IMG" || return 1
	run_fsck "$IMG"
}

# Appends fsync'd through the fsync log (no commit between them: commit=600), then kill -9:
# fsck sees the pending log, the next mount replays it, everything fsync'd is there.
t_sigkill_log() {
	local pids
	cowfs_mount "$IMG" "$MNT" commit=600 || return 1
	# (<<- strips the leading tabs: Python's own indentation is in spaces)
	python3 - "$MNT" "$WORK/logged.src" <<-'EOF' || { cowfs_umount "$MNT" "$IMG"; return 1; }
		import os, sys
		d, src = sys.argv[1], sys.argv[2]
		fd = os.open(d + "/logged", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
		os.fsync(fd)                      # the create commits
		want = bytearray()
		for i in range(300):
		    chunk = os.urandom(4096 if i % 7 else 1000)
		    os.write(fd, chunk)
		    os.fsync(fd)
		    want += chunk
		os.utime(fd, ns=(1234567890123456789, 1234567890987654321))
		os.fsync(fd)
		os.write(fd, b"after the last fsync: may be lost")
		open(src, "wb").write(want)
	EOF
	pids=$(cowfs_pids "$IMG")
	kill -KILL $pids
	wait_daemon_exit "$IMG" 10 || return 1
	cowfs_umount "$MNT" "$IMG" || return 1
	run_fsck "$IMG" || return 1
	grep -q "fsync log: [1-9][0-9]* entries" "$LIB_OUT" ||
		{ echo "    fsck did not see a pending fsync log"; show_output; return 1; }
	# Read-only shows the last commit (the empty file) and says why; the image is unchanged.
	cowfs_mount "$IMG" "$MNT" ro || return 1
	grep -q "fsync log" "$LIB_ERR" || { echo "    ro mount: no word of the fsync log"; return 1; }
	[ "$(stat -c %s "$MNT/logged")" = 0 ] || { echo "    ro mount: size is not 0"; return 1; }
	cowfs_umount "$MNT" "$IMG" || return 1
	cowfs_mount "$IMG" "$MNT" || return 1
	local size mtime
	size=$(stat -c %s "$MNT/logged")
	mtime=$(stat -c %.9Y "$MNT/logged")
	[ "$mtime" = 1234567890.987654321 ] || { echo "    mtime after replay: $mtime"; return 1; }
	[ "$size" -ge "$(stat -c %s "$WORK/logged.src")" ] ||
		{ echo "    size after replay: $size"; return 1; }
	cmp -n "$(stat -c %s "$WORK/logged.src")" "$WORK/logged.src" "$MNT/logged" ||
		{ echo "    the fsync'd appends are not intact"; return 1; }
	rm -f "$MNT/logged"
	cowfs_umount "$MNT" "$IMG" || return 1
	run_fsck "$IMG"
}

t_mount_helper() {
	local rc=0
	mkdir -p "$MNT"
	LIB_MOUNTS+=("$MNT")
	# (cowfs on the PATH for a helper that is mount.fuse3 itself, which runs "cowfs")
	PATH=$(abspath "$BIN"):$PATH mount -t fuse.cowfs "$IMG" "$MNT" -o default_permissions \
		>"$LIB_OUT" 2>&1 || rc=$?
	if [ $rc -ne 0 ] || ! wait_mounted "$MNT" 10; then
		echo "    mount -t fuse.cowfs: exit $rc"
		show_output
		return 1
	fi
	verify_fixture "$MNT" || return 1
	t_proc_mounts
}

# fsx (tests/integ/fsx.c): random writes, truncates, fallocate modes, copy_file_range, mmap and
# SEEK_DATA/SEEK_HOLE checked byte for byte against a model. With --big (make stress), also
# across unmount/fsck/remount cycles.
FSX=${FSX:-$BIN/../tests/fsx}
t_fsx() {
	local ops=100000
	[ $BIG = 1 ] && ops=400000
	mkdir -p "$MNT/fsx" || return 1
	"$FSX" -q -N $ops -S "${COWFS_FSX_SEED:-20261122}" "$MNT/fsx" >"$LIB_OUT" 2>&1 ||
		{ show_output; return 1; }
	tail -n 1 "$LIB_OUT" | sed 's/^/    /'
	rm -rf "$MNT/fsx"
}

t_fsx_remounts() {
	local hook="$WORK/fsx-remount.sh"
	cat >"$hook" <<-EOF
		#!/usr/bin/env bash
		. "$HERE/lib.sh"
		BIN="$BIN"; COWFS="$COWFS"; FSCK="$FSCK"; WORK="$WORK"
		LIB_OUT="$WORK/.hook.out"; LIB_ERR="$WORK/.hook.err"
		cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG" && cowfs_mount "$IMG" "$MNT"
	EOF
	chmod +x "$hook"
	mkdir -p "$MNT/fsx" || return 1
	"$FSX" -q -N 60000 -r 10000 -R "$hook" -S "${COWFS_FSX_SEED:-7}" "$MNT/fsx" \
		>"$LIB_OUT" 2>&1 || { show_output; return 1; }
	tail -n 1 "$LIB_OUT" | sed 's/^/    /'
	rm -rf "$MNT/fsx"
}

# Two fsx at once on a mount with cache_size=16M: buffered data is bounded at 4 MiB and flushed
# from 2 MiB on, so background flushes (write-back with the daemon's lock let go for the data
# I/O) run beside every kind of operation of both, on 8 files of up to 8 MiB.
t_fsx_flushing() {
	local ops=30000 a b rc=0
	[ $BIG = 1 ] && ops=150000
	mkdir -p "$MNT/fsx1" "$MNT/fsx2" || return 1
	"$FSX" -q -N $ops -S 11 "$MNT/fsx1" >"$WORK/fsx1.out" 2>&1 &
	a=$!
	"$FSX" -q -N $ops -S 12 "$MNT/fsx2" >"$WORK/fsx2.out" 2>&1 &
	b=$!
	wait $a || rc=1
	wait $b || rc=1
	tail -n 1 "$WORK/fsx1.out" "$WORK/fsx2.out" | grep . | grep -v '^==>' | sed 's/^/    /'
	[ $rc = 0 ] || { cat "$WORK/fsx1.out" "$WORK/fsx2.out" | tail -n 40; return 1; }
	rm -rf "$MNT/fsx1" "$MNT/fsx2"
}

# The memory bound (docs/DESIGN.md 15, "Memory bound") counts 8 request threads, each with its
# receive and read buffers: under 24 concurrent O_DIRECT readers (each read a request of its own)
# the daemon never runs more than those, its main thread, the commit timer and the subvolume
# cleaner (io_uring's workers, iou-wrk-*, are the kernel's and hold no buffers).
DAEMON_THREADS_MAX=11
daemon_threads() { grep -lx cowfs /proc/"$1"/task/*/comm 2>/dev/null | wc -l; }
t_thread_limit() {
	local pid i n most=0 rc=0 readers=()
	pid=$(cowfs_pids "$IMG" | head -n1)
	[ -n "$pid" ] || { echo "    no daemon holds $IMG"; return 1; }
	head -c $((8 << 20)) /dev/urandom >"$MNT/threads.dat" || return 1
	for i in $(seq 24); do
		(for r in 1 2 3 4; do
			dd if="$MNT/threads.dat" of=/dev/null bs=64k iflag=direct status=none || exit 1
		done) &
		readers+=($!)
	done
	while kill -0 "${readers[@]}" 2>/dev/null; do
		n=$(daemon_threads "$pid")
		[ "$n" -gt "$most" ] && most=$n
		sleep 0.05
	done
	for i in "${readers[@]}"; do wait "$i" || rc=1; done
	echo "    most daemon threads seen: $most (at most $DAEMON_THREADS_MAX)"
	rm -f "$MNT/threads.dat"
	[ $rc = 0 ] || { echo "    a reader failed"; return 1; }
	# At least the main thread, the timer and one request thread: the count sees them.
	[ "$most" -ge 3 ] && [ "$most" -le $DAEMON_THREADS_MAX ]
}

# kill -9 in the middle of a write-heavy workload, at several points: a writer makes files of
# random sizes and fsyncs every other one, logging (outside the mount) each fsync'd file's
# checksum once fsync returned. After each kill: fsck clean, and every logged file intact.
t_crash_workload() {
	local round writer log="$WORK/fsynced.log"
	for round in 1 2 3 4; do
		cowfs_mount "$IMG" "$MNT" || return 1
		mkdir -p "$MNT/crash" || return 1
		: >"$log"
		# (its errors once the daemon is gone are expected: stderr is dropped)
		python3 - "$MNT/crash" "$log" "$round" 2>/dev/null <<-'EOF' &
			import hashlib, os, random, sys
			d, log, rnd = sys.argv[1], sys.argv[2], int(sys.argv[3])
			rng = random.Random(rnd)
			i = 0
			while True:
			    data = rng.randbytes(rng.randrange(1, 3 << 20))
			    p = "%s/r%d-%d" % (d, rnd, i)
			    with open(p, "wb") as f:
			        f.write(data)
			        if i % 2 == 0:
			            f.flush()
			            os.fsync(f.fileno())
			            with open(log, "a") as l:
			                l.write("%s %s\n" % (p, hashlib.sha256(data).hexdigest()))
			                l.flush()
			    i += 1
		EOF
		writer=$!
		sleep "$(awk -v r=$round 'BEGIN { srand(r); printf "%.2f", 0.5 + rand() * 2 }')"
		kill -KILL $(cowfs_pids "$IMG") 2>/dev/null
		wait $writer 2>/dev/null
		wait_daemon_exit "$IMG" 10 || return 1
		cowfs_umount "$MNT" "$IMG" || return 1
		run_fsck "$IMG" || return 1
		cowfs_mount "$IMG" "$MNT" || return 1
		local n=0 path sum
		while read -r path sum; do
			[ "$(sha256sum <"$path" 2>/dev/null | cut -d' ' -f1)" = "$sum" ] ||
				{ echo "    round $round: fsync'd $path lost or changed"; return 1; }
			n=$((n + 1))
		done <"$log"
		echo "    round $round: $n fsync'd files intact"
		[ $n -gt 0 ] || { echo "    round $round: nothing was fsync'd before the kill"; return 1; }
		rm -rf "$MNT/crash"
		cowfs_umount "$MNT" "$IMG" || return 1
	done
	run_fsck "$IMG"
}

# ---- run -----------------------------------------------------------------------------------

step "build posix_check" build_posix_check || { lib_summary; exit 1; }

if [ $DIR_ONLY = 1 ]; then
	echo "test_mount: --dir-only in $TARGET_DIR: no mkfs, mount, fsck, refusals, ro"
	step "posix_check (default groups) in $TARGET_DIR" \
		posix "$TARGET_DIR" --skip-group perm --skip-group acl
	step "posix_check perm and acl groups as uid $NONROOT_UID" \
		posix "$TARGET_DIR" --only-group perm --only-group acl
	if [ $PROGRAMS = 1 ]; then
		step "programs.sh" bash "$HERE/programs.sh" "$TARGET_DIR"
	fi
	step "persistence fixture: write" make_fixture "$TARGET_DIR"
	step "persistence fixture: read back" verify_fixture "$TARGET_DIR"
	rm -rf "$TARGET_DIR/persist"
	lib_summary
	exit
fi

# The steps that act as the non-root user (all of them: --other-users runs only these).
other_user_steps() {
	if step "mount -o default_permissions,allow_other" t_mount default_permissions,allow_other
	then
		step "posix_check perm and acl groups as uid $NONROOT_UID" \
			posix "$MNT" --only-group perm --only-group acl
		[ $OTHER_USERS_ONLY = 1 ] ||
			step "persistence fixture: still there" verify_fixture "$MNT"
		step "unmount" t_umount
	fi
	step "fsck.cowfs after the permission checks" t_fsck

	if step "mount -o allow_other" t_mount allow_other; then
		step "allow_other implies default_permissions: others kept out of 0600/0700" \
			t_allow_other_checks_permissions
		step "unmount" t_umount
	fi
}

if [ $OTHER_USERS_ONLY = 1 ]; then
	step "mkfs.cowfs -s $IMAGE_SIZE" t_mkfs || { lib_summary; exit 1; }
	other_user_steps
	step "fsck.cowfs at the end" t_fsck
	lib_summary
	exit
fi

step "mkfs.cowfs -s $IMAGE_SIZE" t_mkfs || { lib_summary; exit 1; }
if step "mount" t_mount; then
	step "/proc/mounts: source is the image, type fuse.cowfs" t_proc_mounts
	step "a second mount of the same image is refused while mounted" t_second_mount_refused
	step "bad mount options are refused by name, nothing mounted" t_bad_options_refused
	step "the kernel's read-ahead is 1 MiB after the first open" t_readahead
	step "posix_check (default groups and big: a 1 GiB file, 100,000 entries)" \
		posix "$MNT" --skip-group perm --skip-group acl
	if [ $PROGRAMS = 1 ]; then
		step "programs.sh (tar/make, git, rsync, sqlite3)" bash "$HERE/programs.sh" "$MNT"
	fi
	step "fsx: random operations verified against a model" t_fsx
	[ $BIG = 1 ] && step "fsx across unmount, fsck and remount" t_fsx_remounts
	step "persistence fixture: write" make_fixture "$MNT"
	step "unmount (and the daemon exits)" t_umount
fi
step "fsck.cowfs after the first mount" t_fsck

if step "remount" t_mount; then
	step "persistence fixture: all there after remount" verify_fixture "$MNT"
	step "unmount" t_umount
fi
step "fsck.cowfs after the remount" t_fsck

if step "mount -o cache_size=16M" t_mount cache_size=16M; then
	step "two fsx at once with a 16 MiB cache: background flushes beside them" t_fsx_flushing
	step "24 concurrent readers: at most 8 request threads (the memory bound's)" t_thread_limit
	step "persistence fixture: still there" verify_fixture "$MNT"
	step "unmount" t_umount
fi
step "fsck.cowfs after fsx with a small cache" t_fsck

other_user_steps

if step "mount -o max_read=4096" t_mount max_read=4096; then
	step "max_read=4096: in the mount's options, a 3 MiB file reads back whole" t_max_read
	step "unmount" t_umount
fi

"$COWFS" dump --super "$IMG" >"$WORK/super.before" 2>&1
if step "mount -o ro" t_mount ro; then
	step "ro: reads work, every change is EROFS" t_ro
	step "unmount" t_umount
	step "ro: the image was not written" t_ro_unchanged
fi

step "SIGTERM to the daemon: unmounted, committed, fsck clean" t_sigterm
step "SIGKILL to the daemon: fsck clean, fsync'd data intact after remount" t_sigkill
step "kill -9 after fsync'd appends: the fsync log is replayed at the next mount" t_sigkill_log
step "kill -9 during a write-heavy workload, 4 times: fsync'd files intact" t_crash_workload
step "ENOSPC on a full 128 MiB image, space back after rm, fsck clean" t_enospc
step "an injected failure aborts the transaction: EIO, then EROFS, cowfs status says why" t_abort
step "mounting 64 MiB of zeros (or a missing image) is refused" t_zeros_refused

if lib_sbin_helper >"$WORK/helper.why"; then
	if step "mount -t fuse.cowfs IMG MNT" t_mount_helper; then
		step "unmount" t_umount
	fi
else
	skip_step "mount -t fuse.cowfs" "$(sed 's/^ *//' "$WORK/helper.why")"
fi
step "fsck.cowfs at the end" t_fsck

lib_summary
