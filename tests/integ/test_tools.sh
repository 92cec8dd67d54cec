#!/usr/bin/env bash
# Integration tests of the command-line programs: mkfs.cowfs, fsck.cowfs and `cowfs dump`, run
# as built (BIN, default build/bin) on scratch images in a temporary directory under
# COWFS_TEST_DIR; --version, the man pages, the bash completion and what `make install` puts
# where (installs into temporary directories only).
#
#   bash tests/integ/test_tools.sh
#   BIN=build-san/bin COWFS_TEST_DIR=build-san/tmp bash tests/integ/test_tools.sh
#
# Each test case is a function; it fails at its first failed expectation. Under a sanitizer
# build every run's stderr is also checked for sanitizer reports (whose default exit status, 1,
# would otherwise pass for "exits 1").
set -euo pipefail

BIN=${BIN:-build/bin}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MKFS=$BIN/mkfs.cowfs
COWFS=$BIN/cowfs
FSCK=$BIN/fsck.cowfs
TEST_ROOT=${COWFS_TEST_DIR:-/tmp}

for b in "$MKFS" "$COWFS"; do
	if [ ! -x "$b" ]; then
		echo "test_tools: $b is missing: build first (make all)" >&2
		exit 1
	fi
done
mkdir -p "$TEST_ROOT"
WORK=$(mktemp -d "$TEST_ROOT/test_tools.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# A sanitizer report exits with this instead of 1.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86:print_stacktrace=1"

pass=0
fail=0
OUT=$WORK/stdout
ERR=$WORK/stderr
rc=0

# ---- helpers -------------------------------------------------------------------------------

# run CMD...: run it, stdout to $OUT, stderr to $ERR, status to $rc; never fails itself.
run() {
	rc=0
	"$@" >"$OUT" 2>"$ERR" || rc=$?
	if grep -q 'Sanitizer\|runtime error:' "$ERR"; then
		echo "    sanitizer report from: $*"
		rc=86
	fi
}

# The diagnostics printed when an expectation fails.
show() {
	echo "    $1"
	sed -n '1,15s/^/    stdout: /p' "$OUT"
	sed -n '1,15s/^/    stderr: /p' "$ERR"
}

expect_rc() {
	[ "$rc" -eq "$1" ] && return 0
	show "expected exit status $1, got $rc"
	return 1
}

# expect_out / expect_err PATTERN (grep basic regex)
expect_out() {
	grep -q -- "$1" "$OUT" && return 0
	show "expected stdout to match '$1'"
	return 1
}

expect_err() {
	grep -q -- "$1" "$ERR" && return 0
	show "expected stderr to match '$1'"
	return 1
}

expect_no_out() {
	grep -q -- "$1" "$OUT" || return 0
	show "expected stdout not to match '$1'"
	return 1
}

# expect_true DESCRIPTION COMMAND...
expect_true() {
	local what=$1
	shift
	"$@" && return 0
	show "expected: $what"
	return 1
}

tcase() {
	local name=$1
	shift
	if "$@"; then
		pass=$((pass + 1))
		echo "ok   $name"
	else
		fail=$((fail + 1))
		echo "FAIL $name"
	fi
}

skip() {
	echo "skip $1: $2"
}

file_size() { stat -c %s "$1"; }

# bytes COUNT AT FILE: COUNT bytes of FILE from offset AT, as hex.
bytes() { od -An -tx1 -j "$2" -N "$1" "$3" | tr -d ' \n'; }

# put_bytes FILE AT PRINTF-ESCAPES: overwrite bytes in place.
put_bytes() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# A sparse file of SIZE bytes.
sparse_file() { rm -f "$1"; truncate -s "$2" "$1"; }

UUID_RE='[0-9a-f]\{8\}-[0-9a-f]\{4\}-[0-9a-f]\{4\}-[0-9a-f]\{4\}-[0-9a-f]\{12\}'

# ---- mkfs.cowfs ----------------------------------------------------------------------------

t_mkfs_new() {
	local img=$WORK/new.img
	run "$MKFS" -s 1G "$img"
	expect_rc 0 || return 1
	expect_out "UUID: *$UUID_RE" || return 1
	expect_out "1073741824 bytes" || return 1
	expect_out "65536, 67108864" || return 1
	expect_true "image is 1 GiB" [ "$(file_size "$img")" -eq 1073741824 ] || return 1
}

t_mkfs_uuid() {
	local img=$WORK/uuid.img u=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
	run "$MKFS" -s 64M -U "$u" "$img"
	expect_rc 0 || return 1
	expect_out "UUID: *$u" || return 1
	run "$COWFS" dump --super "$img"
	expect_rc 0 || return 1
	expect_out "fsid *$u" || return 1
	run "$MKFS" -s 64M -U 0f1e2d3c-4b5a-6978-8796 "$WORK/uuid2.img"
	expect_rc 2 || return 1
	expect_err "UUID" || return 1
	expect_true "no image left behind" [ ! -e "$WORK/uuid2.img" ] || return 1
}

t_mkfs_refuses_cowfs() {
	local img=$WORK/again.img u=11111111-2222-3333-4444-555555555555
	run "$MKFS" -q -s 64M -U "$u" "$img"
	expect_rc 0 || return 1
	run "$MKFS" "$img"
	expect_rc 1 || return 1
	expect_err "cowfs" || return 1
	expect_err "\-f" || return 1
	run "$COWFS" dump --super "$img"
	expect_out "fsid *$u" || return 1
	run "$MKFS" -f "$img"
	expect_rc 0 || return 1
	expect_no_out "$u" || return 1
	run "$COWFS" dump --super "$img"
	expect_rc 0 || return 1
	expect_no_out "fsid *$u" || return 1
}

t_mkfs_refuses_ext4() {
	local img=$WORK/ext4.img
	sparse_file "$img" 32M
	put_bytes "$img" 1080 '\x53\xef'
	run "$MKFS" "$img"
	expect_rc 1 || return 1
	expect_err "ext4" || return 1
	run "$MKFS" -f -q "$img"
	expect_rc 0 || return 1
	expect_true "old ext4 magic wiped" [ "$(bytes 2 1080 "$img")" = 0000 ] || return 1
}

t_mkfs_refuses_others() {
	local img=$WORK/other.img sig
	for sig in 'xfs 0 XFSB' 'squashfs 0 hsqs' 'swap 4086 SWAPSPACE2' 'swap 65526 SWAPSPACE2' \
		   'vfat 82 FAT32' 'iso9660 32769 CD001' 'btrfs 65600 _BHRfS_M' 'LUKS 0 LUKS\xba\xbe'; do
		set -- $sig
		sparse_file "$img" 32M
		put_bytes "$img" "$2" "$3"
		run "$MKFS" "$img"
		expect_rc 1 || return 1
		expect_err "$1" || return 1
	done
}

t_mkfs_too_small() {
	run "$MKFS" -s 1M "$WORK/small.img"
	expect_rc 1 || return 1
	expect_err "minimum" || return 1
	expect_true "no image left behind" [ ! -e "$WORK/small.img" ] || return 1
	sparse_file "$WORK/small2.img" 8M
	run "$MKFS" "$WORK/small2.img"
	expect_rc 1 || return 1
	expect_err "too small" || return 1
}

t_mkfs_usage_errors() {
	local img=$WORK/usage.img
	run "$MKFS" -n 1000 -s 64M "$img"
	expect_rc 2 || return 1
	expect_err "node size" || return 1
	run "$MKFS" -n 131072 -s 64M "$img"
	expect_rc 2 || return 1
	run "$MKFS" -s 12X "$img"
	expect_rc 2 || return 1
	expect_err "size" || return 1
	run "$MKFS" -L "$(printf 'x%.0s' $(seq 256))" -s 64M "$img"
	expect_rc 2 || return 1
	expect_err "label" || return 1
	run "$MKFS" --bogus "$img"
	expect_rc 2 || return 1
	run "$MKFS"
	expect_rc 2 || return 1
	run "$MKFS" "$img"
	expect_rc 2 || return 1
	expect_err "\-s" || return 1
	expect_true "no image left behind" [ ! -e "$img" ] || return 1
	run "$MKFS" -h
	expect_rc 0 || return 1
	expect_out "Usage" || return 1
}

t_mkfs_bad_target() {
	run "$MKFS" -s 64M "$WORK/no/such/dir/x.img"
	expect_rc 1 || return 1
	expect_err "No such file or directory" || return 1
	run "$MKFS" -s 64M "$WORK"
	expect_rc 1 || return 1
	expect_err "not a regular file or block device" || return 1
}

t_mkfs_read_only() {
	local img=$WORK/ro.img
	sparse_file "$img" 32M
	chmod 444 "$img"
	run "$MKFS" "$img"
	expect_rc 1 || return 1
	expect_err "read-only" || return 1
}

t_mkfs_label_nodesize() {
	local img=$WORK/label.img
	run "$MKFS" -s 64M -L "my disk" -n 4096 -b 4096 "$img"
	expect_rc 0 || return 1
	expect_out "label: *my disk" || return 1
	run "$COWFS" dump --super "$img"
	expect_rc 0 || return 1
	expect_out 'label *"my disk"' || return 1
	expect_out "nodesize *4096" || return 1
}

t_mkfs_resize_and_quiet() {
	local img=$WORK/resize.img
	sparse_file "$img" 20M
	run "$MKFS" -q -s 48M "$img"
	expect_rc 0 || return 1
	expect_true "quiet prints nothing" [ ! -s "$OUT" ] || return 1
	expect_true "resized to 48 MiB" [ "$(file_size "$img")" -eq $((48 << 20)) ] || return 1
	run "$MKFS" -f -q -s 32M "$img"
	expect_rc 0 || return 1
	expect_true "resized to 32 MiB" [ "$(file_size "$img")" -eq $((32 << 20)) ] || return 1
	run "$COWFS" dump --super "$img"
	expect_out "total_bytes *33554432" || return 1
}

# Another program holding the image's lock (as a mount does): mkfs must not touch it.
t_mkfs_locked() {
	local img=$WORK/locked.img fd
	run "$MKFS" -q -s 32M -U 22222222-3333-4444-5555-666666666666 "$img"
	expect_rc 0 || return 1
	exec {fd}<"$img"
	flock -x "$fd"
	run "$MKFS" -f -q "$img"
	exec {fd}<&-
	expect_rc 1 || return 1
	expect_err "in use" || return 1
	run "$COWFS" dump --super "$img"
	expect_rc 0 || return 1
	expect_out "fsid *22222222-3333-4444-5555-666666666666" || return 1
}

# A daemon that is still letting go of the image (umount returns before it has): fsck waits for
# the lock instead of failing or reading a half-committed image.
t_fsck_waits_for_lock() {
	local img=$WORK/waitlock.img
	run "$MKFS" -q -s 32M "$img"
	expect_rc 0 || return 1
	flock -x "$img" sleep 2 &
	local holder=$!
	sleep 0.3
	run "$FSCK" "$img"
	wait $holder
	expect_rc 0 || return 1
	expect_out "clean" || return 1
}

# ---- fsck.cowfs: fsck(8)'s conventions -------------------------------------------------------

# A repairable problem: junk in the superblock copy at 64 MiB (a repair rewrites every copy).
damage_mirror() { put_bytes "$1" $((64 * 1024 * 1024 + 200)) 'ZZZZZZZZ'; }

# -n checks, -a/-p/-y repair what --repair does, -f is accepted; the exit codes are fsck(8)'s.
t_fsck_options() {
	local img=$WORK/fsck8.img o
	run "$MKFS" -q -s 256M "$img"
	expect_rc 0 || return 1
	for o in -n -a -p -y -f -fn "-f -a" --repair; do
		run "$FSCK" $o "$img"
		expect_rc 0 || return 1
		expect_out "clean$" || return 1
	done
	run "$FSCK" -n -a "$img"
	expect_rc 16 || return 1
	expect_err "only one of" || return 1
	for o in -a -p -y; do
		damage_mirror "$img"
		run "$FSCK" -n "$img"
		expect_rc 4 || return 1
		expect_out ": 1 problem$" || return 1
		run "$FSCK" $o "$img"
		expect_rc 1 || return 1
		expect_out ": 1 problem corrected$" || return 1
		run "$FSCK" -n "$img"
		expect_rc 0 || return 1
	done
}

# -C FD: e2fsck's progress lines "PASS DONE TOTAL DEVICE", to stdout for 0, else to FD.
t_fsck_progress() {
	local img=$WORK/fsck-progress.img
	run "$MKFS" -q -s 256M "$img"
	expect_rc 0 || return 1
	run "$FSCK" -C 0 "$img"
	expect_rc 0 || return 1
	expect_true "every line but the summary is PASS DONE TOTAL IMAGE, done <= total" awk -v img="$img" '
		$NF == "clean" { next }
		NF != 4 || $4 != img || $1 !~ /^[1-4]$/ || $2 > $3 { bad = 1 }
		{ seen[$1] = 1 }
		END { exit bad || !(1 in seen) || !(2 in seen) || !(3 in seen) || !(4 in seen) }' "$OUT" || return 1
	expect_out "^4 1 1 $img\$" || return 1
	run "$FSCK" -C 5 "$img" 5>"$WORK/progress"
	expect_rc 0 || return 1
	expect_no_out "^1 " || return 1
	expect_true "-C 5 wrote the lines to descriptor 5" grep -q "^4 1 1 $img\$" "$WORK/progress" ||
		return 1
	run "$FSCK" -C x "$img"
	expect_rc 16 || return 1
}

# util-linux fsck finds fsck.cowfs in PATH and passes -a/-n on: the same exit codes.
t_fsck_via_util_linux() {
	local img bin
	img=$(realpath "$WORK")/fsck-ul.img
	bin=$(realpath "$BIN")
	run "$MKFS" -q -s 256M "$img"
	expect_rc 0 || return 1
	run env PATH="$bin:$PATH" fsck -t cowfs -a "$img"
	expect_rc 0 || return 1
	expect_out "clean$" || return 1
	damage_mirror "$img"
	run env PATH="$bin:$PATH" fsck -t cowfs -n "$img"
	expect_rc 4 || return 1
	run env PATH="$bin:$PATH" fsck -t cowfs -a "$img"
	expect_rc 1 || return 1
	run env PATH="$bin:$PATH" fsck -t cowfs -n "$img"
	expect_rc 0 || return 1
	damage_mirror "$img"
	run env PATH="$bin:$PATH" fsck -t cowfs -p "$img"
	expect_rc 1 || return 1
	run env PATH="$bin:$PATH" fsck -t cowfs -a "$img"
	expect_rc 0 || return 1
}

# ---- --version, man pages, completion, make install (issue 12 item 13) -----------------------

PROGRAMS="cowfs mkfs.cowfs fsck.cowfs cowfs-run"

# Every program: --version exits 0 with one line, "PROG (cowfs) VERSION", the one version
# tools/version.h defines; -V too where it is free (not cowfs-run: its arguments are a command).
t_version() {
	local want p
	want=$(sed -n 's/^#define COWFS_VERSION "\(.*\)"$/\1/p' "$ROOT/tools/version.h")
	expect_true "tools/version.h defines COWFS_VERSION" [ -n "$want" ] || return 1
	for p in $PROGRAMS; do
		run "$BIN/$p" --version
		expect_rc 0 || return 1
		expect_true "$p --version: one line" [ "$(wc -l <"$OUT")" -eq 1 ] || return 1
		expect_true "$p --version: '$p (cowfs) $want'" \
			[ "$(cat "$OUT")" = "$p (cowfs) $want" ] || return 1
	done
	for p in cowfs mkfs.cowfs fsck.cowfs; do
		run "$BIN/$p" -V
		expect_rc 0 || return 1
		expect_true "$p -V: '$p (cowfs) $want'" [ "$(cat "$OUT")" = "$p (cowfs) $want" ] || return 1
	done
	run "$COWFS" dump --version
	expect_rc 0 || return 1
	expect_true "cowfs dump --version: the version" [ "$(cat "$OUT")" = "cowfs (cowfs) $want" ] ||
		return 1
}

# The commands `cowfs --help` lists, and one command's long options from its --help.
cowfs_commands() { "$COWFS" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF > 1 { print $1 }'; }
command_long_options() { "$COWFS" "$1" --help | grep -o -- '--[a-z][a-z-]*' | sort -u; }

# groff and man render each page with no warning (-ww: all of them); cowfs(8) names every
# command and every mount option of cowfs's own that `cowfs --help` lists.
t_man_pages() {
	local page name c o
	for page in "$ROOT"/man/*.8; do
		run groff -man -Tutf8 -ww -z "$page"
		expect_rc 0 || return 1
		expect_true "groff -ww: no warnings for $page" [ ! -s "$ERR" ] || return 1
		run env LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page"
		expect_rc 0 || return 1
		expect_true "man -l: no warnings for $page" [ ! -s "$ERR" ] || return 1
		expect_out "^NAME" || return 1
		expect_out "EXIT STATUS" || return 1
		expect_out "\-\-version" || return 1
	done
	for name in cowfs mkfs.cowfs fsck.cowfs; do
		expect_true "man/$name.8 exists" [ -f "$ROOT/man/$name.8" ] || return 1
	done
	run env LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$ROOT/man/cowfs.8"
	for c in $(cowfs_commands); do
		expect_out "^ *cowfs $c " || return 1
	done
	for o in $("$COWFS" --help | sed -n 's/^       \([a-z_]*=\{0,1\}\)[A-Z]*  .*/\1/p'); do
		expect_out "^ *$o" || return 1
	done
	run env LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$ROOT/man/fsck.cowfs.8"
	for o in -n -a -p -y -f -C -V; do
		expect_out "^       \(-[-a-zA-Z]*, \)*$o\b" || return 1
	done
}

# complete WORD...: what the completion offers for the last word of `WORD...`, in an empty
# directory (no file names mixed in), one per line.
complete_words() {
	(cd "$WORK/empty" && bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_cowfs; printf "%s\n" "${COMPREPLY[@]}"' complete "$ROOT/completion/cowfs" "$@")
}

# `cowfs re<TAB>` gives reflink; every command completes; every long option a command's --help
# lists completes after `cowfs CMD --`; -o completes mount options after a comma.
t_completion() {
	local c o offered
	mkdir -p "$WORK/empty"
	expect_true "cowfs re -> reflink" [ "$(complete_words cowfs re)" = reflink ] || return 1
	expect_true "cowfs st -> status stats" \
		[ "$(complete_words cowfs st | sort | tr '\n' ' ')" = "stats status " ] || return 1
	for c in $(cowfs_commands); do
		expect_true "cowfs $c completes" complete_words cowfs "$c" | grep -qx "$c" || return 1
		offered=$(complete_words cowfs "$c" --)
		for o in $(command_long_options "$c") --version; do
			expect_true "cowfs $c $o completes" grep -qx -- "$o" <<<"$offered" || return 1
		done
	done
	expect_true "cowfs dump --tree <TAB>: tree names" \
		[ "$(complete_words cowfs dump --tree '' | tr '\n' ' ')" = "root extent fs csum " ] ||
		return 1
	expect_true "cowfs IMG MNT -o ro,comm -> ro,commit=" \
		[ "$(complete_words cowfs IMG MNT -o ro,comm)" = "ro,commit=" ] || return 1
	expect_true "cowfs IMG MNT -o noat -> noatime" \
		[ "$(complete_words cowfs IMG MNT -o noat)" = "noatime" ] || return 1
}

# The build BIN is in, when it is this checkout's build/ or build-san/ (make install takes the
# programs from there; another checkout's build would be rebuilt from these sources).
INSTALL_BUILD=$(realpath "$(dirname "$BIN")")
case $INSTALL_BUILD in
"$ROOT/build") INSTALL_SAN=0 ;;
"$ROOT/build-san") INSTALL_SAN=1 ;;
*) INSTALL_BUILD= ;;
esac

# make install (or uninstall) with ARGS, for the build BIN is in.
make_install() {
	run env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory -C "$ROOT" \
		BUILD="$INSTALL_BUILD" SAN="$INSTALL_SAN" "$@"
}

# A package's staging install: exactly these files (no test or demo programs), the mount
# helper pointing at PREFIX/bin/cowfs, not at DESTDIR; make uninstall takes them all away.
t_install_destdir() {
	local d want
	d=$(realpath "$WORK")/stage
	want="./sbin/mount.fuse.cowfs
./usr/bin/cowfs
./usr/bin/cowfs-run
./usr/lib/libcowfs-preload.so
./usr/sbin/fsck.cowfs
./usr/sbin/fsck.fuse.cowfs
./usr/sbin/mkfs.cowfs
./usr/share/bash-completion/completions/cowfs
./usr/share/man/man8/cowfs.8
./usr/share/man/man8/fsck.cowfs.8
./usr/share/man/man8/mkfs.cowfs.8"
	make_install install DESTDIR="$d" PREFIX=/usr
	expect_rc 0 || return 1
	expect_true "installed exactly: $want" [ "$(cd "$d" && find . ! -type d | sort)" = "$want" ] ||
		return 1
	expect_true "mount.fuse.cowfs -> /usr/bin/cowfs" \
		[ "$(readlink "$d/sbin/mount.fuse.cowfs")" = /usr/bin/cowfs ] || return 1
	expect_true "fsck.fuse.cowfs -> fsck.cowfs" \
		[ "$(readlink "$d/usr/sbin/fsck.fuse.cowfs")" = fsck.cowfs ] || return 1
	expect_true "the installed completion is completion/cowfs" \
		cmp -s "$ROOT/completion/cowfs" "$d/usr/share/bash-completion/completions/cowfs" || return 1
	expect_true "man finds the installed pages" \
		[ "$(MANPATH="$d/usr/share/man" man -w fsck.cowfs)" = "$d/usr/share/man/man8/fsck.cowfs.8" ] ||
		return 1
	make_install uninstall DESTDIR="$d" PREFIX=/usr
	expect_rc 0 || return 1
	expect_true "make uninstall leaves no file" [ -z "$(find "$d" ! -type d)" ] || return 1
}

# A real install into a throwaway PREFIX: fsck(8) and mkfs(8) find fsck.cowfs and mkfs.cowfs
# in PREFIX/sbin through PATH (as root's PATH has /usr/local/sbin), cowfs-run finds its library;
# boot-time checks (fsck -A -a, fsck -A -p) of an fstab entry of type fuse.cowfs with a pass
# number run fsck.fuse.cowfs, with fsck.cowfs's exit codes.
t_install_prefix() {
	local p img fstab
	p=$(realpath "$WORK")/prefix
	img=$(realpath "$WORK")/installed.img
	fstab=$WORK/fstab
	make_install install PREFIX="$p" MOUNT_HELPER_DIR="$p/helper"
	expect_rc 0 || return 1
	run env PATH="$p/sbin:/usr/sbin:/usr/bin:/sbin:/bin" mkfs -t cowfs -q -s 256M "$img"
	expect_rc 0 || return 1
	expect_true "mkfs -t cowfs made a cowfs image" "$FSCK" -q "$img" || return 1
	run env PATH="$p/sbin:/usr/sbin:/usr/bin:/sbin:/bin" fsck -V -t cowfs -a "$img"
	expect_rc 0 || return 1
	expect_out "$p/sbin/fsck.cowfs" || return 1
	run "$p/bin/cowfs-run" true
	expect_rc 0 || return 1
	echo "$img $WORK/mnt fuse.cowfs defaults 0 2" >"$fstab"
	damage_mirror "$img"
	run env LIBMOUNT_FSTAB="$fstab" PATH="$p/sbin:/usr/sbin:/usr/bin:/sbin:/bin" fsck -A -a
	expect_rc 1 || return 1
	expect_out "$img: 1 problem corrected" || return 1
	run env LIBMOUNT_FSTAB="$fstab" PATH="$p/sbin:/usr/sbin:/usr/bin:/sbin:/bin" fsck -A -p
	expect_rc 0 || return 1
	expect_out "$img: .*clean$" || return 1
	expect_true "mount helper -> PREFIX/bin/cowfs" \
		[ "$(readlink "$p/helper/mount.fuse.cowfs")" = "$p/bin/cowfs" ] || return 1
}

# ---- cowfs dump ----------------------------------------------------------------------------

DUMP_IMG=$WORK/dump.img

t_dump_text() {
	run "$COWFS" dump "$DUMP_IMG"
	expect_rc 0 || return 1
	expect_out "ROOT_ITEM" || return 1
	expect_out "EXTENT_ITEM" || return 1
	expect_out "TREE_BLOCK_REF" || return 1
	expect_out "^superblock" || return 1
	expect_out "copy 65536 state valid generation 2" || return 1
	expect_out "^tree 1 (root)" || return 1
	expect_out "^tree 2 (extent)" || return 1
	expect_out "^tree 5 (fs)" || return 1
	expect_out "flags TREE_BLOCK" || return 1
}

t_dump_json() {
	run "$COWFS" dump --json "$DUMP_IMG"
	expect_rc 0 || return 1
	expect_true "valid JSON (python3 -m json.tool)" \
		python3 -m json.tool "$OUT" /dev/null || return 1
	expect_true "JSON has the superblock and trees 1, 2, 5, 7" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["superblock"]["magic"] == "_COWFS_1"
assert [t["id"] for t in d["trees"]] == [1, 2, 5, 7], d["trees"]
items = [i for t in d["trees"] for n in t["nodes"] for i in n["items"]]
assert any(i["key"]["type"] == "EXTENT_ITEM" and "TREE_BLOCK" in i["extent_item"]["flags"]
           for i in items)
assert d["problems"] == 0 and d["opened_cleanly"] is True
' "$OUT" || return 1
}

t_dump_selectors() {
	run "$COWFS" dump --tree extent "$DUMP_IMG"
	expect_rc 0 || return 1
	expect_out "^tree 2 (extent)" || return 1
	expect_no_out "^tree 1 \|^tree 5 \|superblock\|ROOT_ITEM" || return 1
	run "$COWFS" dump --super "$DUMP_IMG"
	expect_rc 0 || return 1
	expect_out "^superblock" || return 1
	expect_no_out "^tree" || return 1
	local root
	root=$(sed -n 's/^tree 1 (root) root \([0-9]*\) .*/\1/p' "$WORK/dump.txt")
	run "$COWFS" dump --block "$root" "$DUMP_IMG"
	expect_rc 0 || return 1
	expect_out "^node $root level 0" || return 1
	expect_no_out "^tree\|superblock" || return 1
	run "$COWFS" dump --tree 5 --json "$DUMP_IMG"
	expect_rc 0 || return 1
	expect_true "one tree, id 5" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert [t["id"] for t in d["trees"]] == [5] and "superblock" not in d
' "$OUT" || return 1
	run "$COWFS" dump --tree 77 "$DUMP_IMG"
	expect_rc 1 || return 1
	expect_err "no tree 77" || return 1
	expect_err ": 1 problem found$" || return 1
	run "$COWFS" dump --tree 77 --block 1 "$DUMP_IMG"
	expect_rc 1 || return 1
	expect_err ": 2 problems found$" || return 1
}

# --subvol-space: the fast figure and the recount, key=value lines and JSON; ids that are no
# subvolume exit 2 as a missing --inode does.
t_dump_subvol_space() {
	run "$COWFS" dump --subvol-space 5 "$DUMP_IMG"
	expect_rc 0 || return 1
	expect_out "^	fast exclusive_data=0 exclusive_meta=[1-9][0-9]* referenced=[1-9]" || return 1
	expect_out "^	recount exclusive_data=0 exclusive_meta=[1-9][0-9]* referenced=[1-9]" ||
		return 1
	expect_out "agree *yes" || return 1
	expect_no_out "^tree\|superblock" || return 1
	run "$COWFS" dump --json --subvol-space 5,5 "$DUMP_IMG"
	expect_rc 0 || return 1
	expect_true "JSON: both figures, equal" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["subvol_space"]
assert s["ids"] == [5, 5] and s["agree"] is True
assert {k: s["fast"][k] for k in ("exclusive_data", "exclusive_meta", "referenced")} == \
       {k: s["recount"][k] for k in ("exclusive_data", "exclusive_meta", "referenced")}
' "$OUT" || return 1
	run "$COWFS" dump --subvol-space 256 "$DUMP_IMG"
	expect_rc 2 || return 1
	expect_err "no such subvolume" || return 1
	run "$COWFS" dump --subvol-space 5,x "$DUMP_IMG"
	expect_rc 2 || return 1
	run "$COWFS" dump --subvol-space , "$DUMP_IMG"
	expect_rc 2 || return 1
}

t_dump_usage() {
	run "$COWFS" --help
	expect_rc 0 || return 1
	expect_out "dump" || return 1
	run "$COWFS"
	expect_rc 2 || return 1
	expect_err "Usage" || return 1
	run "$COWFS" frobnicate
	expect_rc 2 || return 1
	run "$COWFS" dump
	expect_rc 2 || return 1
	run "$COWFS" dump --tree nope "$DUMP_IMG"
	expect_rc 2 || return 1
	run "$COWFS" dump --block xyz "$DUMP_IMG"
	expect_rc 2 || return 1
	run "$COWFS" dump "$WORK/missing.img"
	expect_rc 1 || return 1
	expect_err "cannot open" || return 1
	sparse_file "$WORK/zeros.img" 32M
	run "$COWFS" dump "$WORK/zeros.img"
	expect_rc 1 || return 1
	expect_err "not a cowfs image" || return 1
}

# Damage the extent tree's root node (found in dump's output): the dump must report that node
# as unreadable, go on with the next tree, and exit 1 (not crash: 128 + signal).
t_dump_corrupt() {
	local img=$WORK/corrupt.img node
	cp "$DUMP_IMG" "$img"
	node=$(sed -n 's/^tree 2 (extent) root \([0-9]*\) .*/\1/p' "$WORK/dump.txt")
	expect_true "extent tree root found in dump output" [ -n "$node" ] || return 1
	# A fresh node is mostly free space, already zero: write a pattern so the bytes change.
	head -c 4096 /dev/zero | tr '\0' '\132' |
		dd of="$img" bs=4096 seek=$((node / 4096 + 1)) conv=notrunc status=none
	run "$COWFS" dump "$img"
	expect_true "exit status below 128 (no crash)" [ "$rc" -lt 128 ] || return 1
	expect_rc 1 || return 1
	expect_out "node $node level 0 error .* errno 5" || return 1
	expect_out "checksum mismatch" || return 1
	expect_out "^tree 5 (fs)" || return 1
	expect_err "block $node" || return 1
	run "$COWFS" dump --json "$img"
	expect_rc 1 || return 1
	expect_true "valid JSON for a damaged image" python3 -m json.tool "$OUT" /dev/null || return 1
	run "$COWFS" dump --block "$node" "$img"
	expect_rc 1 || return 1
	# A header of garbage: huge nritems, level and offsets must not be trusted.
	head -c 4096 /dev/urandom | dd of="$img" bs=4096 seek=$((node / 4096)) conv=notrunc status=none
	run "$COWFS" dump "$img"
	expect_true "exit status below 128 (no crash)" [ "$rc" -lt 128 ] || return 1
	expect_rc 1 || return 1
	# A superblock copy damaged: reported, the other copy used.
	cp "$DUMP_IMG" "$img"
	put_bytes "$img" $((65536 + 100)) '\x01'
	run "$COWFS" dump --super "$img"
	expect_rc 1 || return 1
	expect_out "copy 65536 state invalid .*checksum mismatch" || return 1
	expect_out "copy 67108864 state valid" || return 1
}

# ---- run -----------------------------------------------------------------------------------

tcase "mkfs: new image with -s 1G prints the UUID" t_mkfs_new
tcase "mkfs: -U sets the UUID" t_mkfs_uuid
tcase "mkfs: refuses an existing cowfs without -f" t_mkfs_refuses_cowfs
tcase "mkfs: refuses an ext4 signature without -f, wipes it with -f" t_mkfs_refuses_ext4
tcase "mkfs: refuses xfs, squashfs, swap, vfat, iso9660, btrfs, LUKS" t_mkfs_refuses_others
tcase "mkfs: too small" t_mkfs_too_small
tcase "mkfs: usage errors exit 2" t_mkfs_usage_errors
tcase "mkfs: bad target exits 1" t_mkfs_bad_target
if [ "$(id -u)" -ne 0 ]; then
	tcase "mkfs: read-only target" t_mkfs_read_only
else
	skip "mkfs: read-only target" "running as root (file permissions do not apply)"
fi
tcase "mkfs: -L and -n show in the superblock" t_mkfs_label_nodesize
tcase "mkfs: -s resizes an existing file; -q" t_mkfs_resize_and_quiet
if command -v flock >/dev/null; then
	tcase "mkfs: refuses an image another program has locked" t_mkfs_locked
	tcase "fsck: waits for the image's lock to be let go" t_fsck_waits_for_lock
else
	skip "mkfs: locked image" "no flock(1)"
fi

tcase "every program: --version prints one line, the one version" t_version
if command -v groff >/dev/null && command -v man >/dev/null; then
	tcase "man pages: render without warnings; name every command and option" t_man_pages
else
	skip "man pages" "no groff or man"
fi
tcase "bash completion: commands, their options, mount options" t_completion
if [ -z "$INSTALL_BUILD" ]; then
	skip "make install" "BIN ($BIN) is not this checkout's build/bin or build-san/bin"
elif command -v make >/dev/null; then
	tcase "make install DESTDIR= PREFIX=/usr: exactly the programs, pages, completion" \
		t_install_destdir
	tcase "make install PREFIX=...: mkfs -t cowfs and fsck -t cowfs find the programs" \
		t_install_prefix
else
	skip "make install" "no make"
fi
tcase "fsck: -n, -a, -p, -y, -f as fsck(8) passes them; exit codes 0, 1, 4, 16" t_fsck_options
tcase "fsck: -C FD writes e2fsck's progress lines" t_fsck_progress
if command -v fsck >/dev/null; then
	tcase "fsck: fsck -t cowfs (util-linux) runs fsck.cowfs from PATH" t_fsck_via_util_linux
else
	skip "fsck: fsck -t cowfs" "no fsck(8)"
fi

if "$MKFS" -q -s 256M "$DUMP_IMG" && "$COWFS" dump "$DUMP_IMG" >"$WORK/dump.txt"; then
	tcase "dump: text" t_dump_text
	tcase "dump: --json is valid JSON" t_dump_json
	tcase "dump: --tree, --super, --block" t_dump_selectors
	tcase "dump: usage and open errors" t_dump_usage
	tcase "dump: --subvol-space, fast and recounted" t_dump_subvol_space
	tcase "dump: corrupt image" t_dump_corrupt
else
	fail=$((fail + 1))
	echo "FAIL dump: could not make and dump the image the dump tests use"
fi

echo "tools: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
