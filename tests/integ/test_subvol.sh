#!/usr/bin/env bash
# Subvolumes and snapshots on a real mount (docs/DESIGN.md 16, docs/IOCTL.md), through the
# ioctls directly (ioctl_check; `cowfs property set ro` once): create, write, snapshot (rw and
# read-only); a read-only snapshot refuses every change with EROFS, and is writable again once
# its flag is cleared; writable snapshots diverge both ways; st_ino is unique across a subvolume
# and its snapshot (find, and tar/rsync -aH copies make no hard links that were not there);
# rename and link across subvolumes are EXDEV; copy_file_range and CLONE_RANGE across subvolumes
# share extents; -o subvol= / subvolid= / the default subvolume choose the mount's root (bad
# values refused), -o remount still works; a file handle into a snapshot survives a remount;
# deletion (the directory goes at once, SUBVOL_SYNC gives the space back), kill -9 in the middle
# of deleting a 20,000-file snapshot (resumed and completed at the next mount); as an
# unprivileged user (write access needed, EPERM for others' subvolumes, user_subvol_rm_allowed).
# fsck clean after every unmount.
#
#   bash tests/integ/test_subvol.sh
#
# Needs root (setpriv; mkfs.ext4 and a loop device for the copies, else /tmp). Environment:
# BIN (build/bin), IOCTL_CHECK, COWFS_TEST_DIR, COWFS_KEEP=1, COWFS_NONROOT_UID (65534).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

lib_require_programs test_subvol
IC=${IOCTL_CHECK:-$BIN/../tests/ioctl_check}
[ -x "$IC" ] || { echo "test_subvol: $IC is missing: build first" >&2; exit 1; }
IC=$(abspath "$IC")
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then
	echo "test_subvol: needs root and setpriv: skipped"
	exit 0
fi
PY=$(command -v /usr/bin/python3 || command -v python3)

NONROOT_UID=${COWFS_NONROOT_UID:-65534}
lib_init test_subvol --other-user "$NONROOT_UID"
IMG=$WORK/cowfs.img
MNT=$WORK/mnt
IC_NONROOT=$(lib_reachable "$NONROOT_UID" "$IC") || exit 1

# errno_of PYTHON-STATEMENTS: the errno they fail with (0: they worked).
errno_of() {
	"$PY" -c "
import os, errno, sys
try:
    $1
except OSError as e:
    print(e.errno); sys.exit(0)
print(0)"
}

remount_fresh() {
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG" && cowfs_mount "$IMG" "$MNT" "${1:-}"
}

t_setup() {
	cowfs_mkfs "$IMG" 2G && cowfs_mount "$IMG" "$MNT"
}

t_create_snapshot() {
	ic subvol-create "$MNT" sv && expect id "$(field id)" 256 || return 1
	echo hello >"$MNT/sv/a" && mkdir "$MNT/sv/d" && echo inner >"$MNT/sv/d/f" &&
		ln "$MNT/sv/a" "$MNT/sv/hard" &&
		[ "$(errno_of "os.setxattr('$MNT/sv/a', 'user.k', b'v')")" = 0 ] || return 1
	head -c 1048576 /dev/urandom >"$MNT/sv/big" || return 1
	ic snapshot "$MNT/sv" "$MNT" snap && SNAP=$(field id) &&
	ic snapshot -r "$MNT/sv" "$MNT" ro && RO=$(field id) || return 1
	expect "snapshot content" "$(cat "$MNT/snap/a" "$MNT/ro/d/f")" "$(printf 'hello\ninner')" &&
	cmp -s "$MNT/sv/big" "$MNT/ro/big" || { echo "    big differs in the snapshot"; return 1; }
	ic subvol-info "$MNT/ro" && expect flags "$(field flags)" ro &&
		expect path "$(field path)" ro && expect source "$(field source)" 256
}

# Every change inside the read-only snapshot: EROFS.
t_ro_refuses() {
	local r=$MNT/ro op got bad=0
	local -a ops=(
		"fd = os.open('$r/a', os.O_WRONLY); os.write(fd, b'x')"
		"os.open('$r/new', os.O_CREAT | os.O_WRONLY, 0o644)"
		"os.unlink('$r/a')"
		"os.rename('$r/a', '$r/a2')"
		"os.chmod('$r/a', 0o600)"
		"os.chown('$r/a', 1, 1)"
		"os.utime('$r/a', (1, 1))"
		"os.setxattr('$r/a', 'user.x', b'1')"
		"os.removexattr('$r/a', 'user.k')"
		"os.truncate('$r/a', 0)"
		"fd = os.open('$r/big', os.O_WRONLY); os.posix_fallocate(fd, 0, 8 << 20)"
		"i = os.open('$MNT/sv/big', os.O_RDONLY); o = os.open('$r/a', os.O_WRONLY)
    os.copy_file_range(i, o, 65536, 0, 0)"
		"os.mkdir('$r/dir')"
		"os.symlink('a', '$r/sym')"
		"os.link('$r/a', '$r/a3')"
		"os.rmdir('$r/d')"
	)
	for op in "${ops[@]}"; do
		got=$(errno_of "$op")
		[ "$got" = 30 ] || { echo "    $op: errno $got, expected EROFS (30)"; bad=1; }
	done
	# touch (utimensat now) and a clone into it too.
	touch "$r/a" 2>/dev/null && { echo "    touch worked"; bad=1; }
	run "$IC" -e EROFS clone "$MNT/sv/big" "$r/big" || { show_output; bad=1; }
	[ "$(cat "$r/a")" = hello ] || { echo "    the snapshot changed"; bad=1; }
	return $bad
}

t_ro_cleared() {
	ic subvol-ro "$MNT/ro" 0 && ic subvol-info "$MNT/ro" && expect flags "$(field flags)" rw &&
	echo changed >"$MNT/ro/a" && expect content "$(cat "$MNT/ro/a")" changed &&
	expect "source untouched" "$(cat "$MNT/sv/a")" hello &&
	ic subvol-ro "$MNT/ro" 1 && [ "$(errno_of "os.unlink('$MNT/ro/a')")" = 30 ] &&
	ic subvol-ro "$MNT/ro" 0 || return 1
	# The same through the CLI.
	"$COWFS" property set "$MNT/ro" ro true && [ "$(errno_of "os.mkdir('$MNT/ro/x')")" = 30 ] &&
	"$COWFS" property set "$MNT/ro" ro false && mkdir "$MNT/ro/x" && rmdir "$MNT/ro/x" ||
		{ echo "    cowfs property set ro true/false did not take"; return 1; }
}

t_diverge() {
	echo from-sv >"$MNT/sv/d/f" && echo from-snap >"$MNT/snap/d/g" &&
	rm "$MNT/snap/hard" && echo tail >>"$MNT/snap/a" || return 1
	expect sv "$(cat "$MNT/sv/d/f"; ls "$MNT/sv/d" | tr '\n' ' '; cat "$MNT/sv/a")" \
		"$(printf 'from-sv\nf hello')" &&
	expect snap "$(cat "$MNT/snap/d/f"; ls "$MNT/snap/d" | tr '\n' ' '; cat "$MNT/snap/a")" \
		"$(printf 'inner\nf g hello\ntail')" &&
	expect "sv links" "$(stat -c %h "$MNT/sv/a")" 2 &&
	expect "snap links" "$(stat -c %h "$MNT/snap/a")" 1
}

# Link counts of every regular file below DIR, as "PATH LINKS" lines.
links_of() { (cd "$1" && find . -type f -printf '%p %n\n' | sort); }

t_unique_ino() {
	local dups copy=$WORK/copy
	# One number, one inode: names of one st_ino must be hard links within one subvolume
	# (the first component below the mount; sv/a and sv/hard are one).
	dups=$(find "$MNT" -mindepth 1 -printf '%i %P\n' | awk '{ split($2, p, "/");
		if (($1 in top) && top[$1] != p[1]) print $1; top[$1] = p[1] }' | head -n 3)
	[ -z "$dups" ] || { echo "    st_ino in two subvolumes: $dups"; return 1; }
	[ "$(find "$MNT" -printf '%i\n' | sort -u | wc -l)" -gt 10 ] || return 1
	if ! loop_fs ext4 "$copy" 2>/dev/null; then
		mkdir -p "$copy"
	fi
	mkdir -p "$copy/tar" "$copy/rsync" &&
	tar -C "$MNT" -cf - . | tar -C "$copy/tar" -xf - &&
	rsync -aHX "$MNT/" "$copy/rsync/" || { echo "    copying failed"; return 1; }
	expect "tar link counts" "$(links_of "$copy/tar")" "$(links_of "$MNT")" &&
	expect "rsync link counts" "$(links_of "$copy/rsync")" "$(links_of "$MNT")"
}

t_exdev() {
	expect rename "$(errno_of "os.rename('$MNT/sv/a', '$MNT/snap/a9')")" 18 &&
	expect "rename dir" "$(errno_of "os.rename('$MNT/sv/d', '$MNT/d')")" 18 &&
	expect link "$(errno_of "os.link('$MNT/sv/a', '$MNT/snap/a9')")" 18 &&
	expect "link to top" "$(errno_of "os.link('$MNT/sv/a', '$MNT/a9')")" 18 &&
	[ -e "$MNT/sv/a" ] && [ ! -e "$MNT/snap/a9" ]
}

t_share_across() {
	local before after
	ic stats "$MNT/snap" && before=$(field copy_bytes_shared)
	[ "$(errno_of "i = os.open('$MNT/sv/big', os.O_RDONLY)
    o = os.open('$MNT/snap/copy', os.O_CREAT | os.O_WRONLY, 0o644)
    assert os.copy_file_range(i, o, 1048576, 0, 0) == 1048576")" = 0 ] ||
		{ echo "    copy_file_range across subvolumes failed"; return 1; }
	ic stats "$MNT/snap" && after=$(field copy_bytes_shared)
	[ $((after - before)) -ge 1048576 ] ||
		{ echo "    copy_bytes_shared grew by $((after - before)), not 1048576"; return 1; }
	cmp -s "$MNT/sv/big" "$MNT/snap/copy" || { echo "    the copy differs"; return 1; }
	: >"$MNT/snap/cloned" && ic clone "$MNT/sv/big" "$MNT/snap/cloned" &&
	expect cloned "$(field cloned)" 1048576 && cmp -s "$MNT/sv/big" "$MNT/snap/cloned" &&
	ic fiemap "$MNT/snap/cloned" && grep -q shared "$LIB_OUT" ||
		{ echo "    the clone's extents are not shared"; show_output; return 1; }
}

t_mount_choice() {
	echo top >"$MNT/topfile"
	remount_fresh subvol=sv && expect "subvol=sv" "$(cat "$MNT/a")" hello &&
	[ ! -e "$MNT/topfile" ] && ic id "$MNT/a" && expect subvol "$(field subvol)" 256 || return 1
	remount_fresh "subvolid=$SNAP" && expect "subvolid" "$(cat "$MNT/d/g")" from-snap ||
		return 1
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG" || return 1
	local opt
	for opt in subvolid=abc subvolid=7 subvolid=99999 subvol=nowhere subvol=sv/d; do
		run "$COWFS" "$IMG" "$MNT" -o "$opt"
		if [ "$LIB_RC" -ne 1 ] || ! grep -q . "$LIB_ERR" || is_mounted "$MNT"; then
			echo "    -o $opt: exit $LIB_RC, expected 1 with a message"
			show_output
			return 1
		fi
	done
	cowfs_mount "$IMG" "$MNT" && ic subvol-default "$MNT" 256 &&
	expect default "$(field id)" 256 &&
	remount_fresh && expect "default" "$(cat "$MNT/a")" hello || return 1
	# -o remount still works on a mount of a subvolume.
	run "$COWFS" "$IMG" "$MNT" -o remount,ro && [ "$(errno_of "os.mkdir('$MNT/x')")" = 30 ] &&
	run "$COWFS" "$IMG" "$MNT" -o remount,rw && mkdir "$MNT/x" && rmdir "$MNT/x" ||
		{ echo "    remount ro/rw failed"; show_output; return 1; }
	ic subvol-default "$MNT" 5 && remount_fresh && [ -e "$MNT/topfile" ]
}

# A subvolume inside a directory of another: its path, and subvol= walking through both trees.
t_nested() {
	ic subvol-create "$MNT/sv/d" nest && local id=$(field id) || return 1
	echo deep >"$MNT/sv/d/nest/file" &&
	ic subvol-info "$MNT/sv/d/nest" && expect path "$(field path)" sv/d/nest &&
	expect parent "$(field parent)" 256 && expect "id of the file" "$(field id)" "$id" ||
		return 1
	remount_fresh subvol=/sv//d/./nest/ && expect content "$(cat "$MNT/file")" deep &&
	remount_fresh
}

t_handles() {
	local ino
	ino=$(stat -c %i "$MNT/snap/d/g")
	ic handle-save "$MNT/snap/d/g" "$WORK/handle" && remount_fresh &&
	ic handle-open "$MNT" "$WORK/handle" && expect "handle ino" "$(field ino)" "$ino"
}

# How many subvolumes SUBVOL_INFO_NEXT lists as deleting.
deleting_count() {
	local from=0 n=0
	while run "$IC" subvol-info -n "$MNT" "$from" && [ "$LIB_RC" -eq 0 ]; do
		grep -q deleting "$LIB_OUT" && n=$((n + 1))
		from=$(($(field id) + 1))
	done
	echo $n
}

avail_kib() { df --output=avail -k "$MNT" | tail -n 1 | tr -d ' '; }

t_delete() {
	local before after
	ic subvol-sync "$MNT" && before=$(avail_kib)
	ic subvol-create "$MNT" gone && head -c $((64 << 20)) /dev/urandom >"$MNT/gone/data" &&
		sync -f "$MNT" || return 1
	ic subvol-delete "$MNT" gone && [ ! -e "$MNT/gone" ] ||
		{ echo "    the directory is still there"; return 1; }
	ic subvol-sync "$MNT" || return 1
	after=$(avail_kib)
	[ "$after" -ge $((before - 1024)) ] ||
		{ echo "    avail ${after} KiB after, ${before} KiB before"; return 1; }
	run "$IC" -e EINVAL subvol-delete "$MNT/sv" d || { show_output; return 1; }
	run "$IC" -e ENOTDIR subvol-delete "$MNT/sv" a || { show_output; return 1; }
}

t_kill_mid_delete() {
	local id n hold
	ic subvol-create "$MNT" many || return 1
	"$PY" -c "
import os
for i in range(20000):
    d = '$MNT/many/d%03d' % (i // 200)
    if i % 200 == 0: os.mkdir(d)
    with open(d + '/f%05d' % i, 'w') as f: f.write('x' * (i % 3000))" || return 1
	ic snapshot "$MNT/many" "$MNT" manysnap && id=$(field id) || return 1
	# A file of the snapshot open: the cleaner leaves a subvolume in use alone, so the kill
	# lands while it is still to be dropped (the source, sharing everything, goes at once).
	exec {hold}<"$MNT/manysnap/d000/f00001" || return 1
	ic subvol-delete "$MNT" manysnap && ic subvol-delete "$MNT" many || return 1
	n=$(deleting_count)
	[ "$n" -ge 1 ] || { echo "    nothing deleting before the kill"; return 1; }
	kill -KILL $(cowfs_pids "$IMG")
	wait_daemon_exit "$IMG" 10 || return 1
	exec {hold}<&-
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG" && cowfs_mount "$IMG" "$MNT" || return 1
	# Resumed by the new mount's cleaner (it may be done before the sync asks).
	ic subvol-sync "$MNT" || return 1
	echo "    deleting at the kill: $n; still deleting when SUBVOL_SYNC came: $(field count)"
	run "$IC" -e ENOENT subvol-info "$MNT" "$id" || { show_output; return 1; }
	expect "deleting left" "$(deleting_count)" 0 || return 1
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG" && cowfs_mount "$IMG" "$MNT"
}

t_unprivileged() {
	local u=$MNT/user
	# Other users reach a FUSE mount only with allow_other (the kernel then checks access).
	remount_fresh allow_other || return 1
	mkdir "$u" && chown "$NONROOT_UID:$NONROOT_UID" "$u" || return 1
	# No write access to the top level: refused; in a directory of their own: allowed.
	run lib_as_user "$NONROOT_UID" "$IC_NONROOT" -e EACCES snapshot "$MNT/sv" "$MNT" nope ||
		{ show_output; return 1; }
	ic_as_nonroot snapshot "$MNT/sv" "$u" mine && ic_as_nonroot subvol-create "$u" own ||
		return 1
	# Someone else's subvolume in their directory, and their own without the option: EPERM.
	ic subvol-create "$u" roots || return 1
	run lib_as_user "$NONROOT_UID" "$IC_NONROOT" -e EPERM subvol-delete "$u" roots ||
		{ show_output; return 1; }
	run lib_as_user "$NONROOT_UID" "$IC_NONROOT" -e EPERM subvol-delete "$u" own ||
		{ show_output; return 1; }
	remount_fresh allow_other,user_subvol_rm_allowed || return 1
	run lib_as_user "$NONROOT_UID" "$IC_NONROOT" -e EPERM subvol-delete "$u" roots ||
		{ show_output; return 1; }
	ic_as_nonroot subvol-delete "$u" own && [ ! -e "$u/own" ] && ic subvol-sync "$MNT"
}

t_final_fsck() {
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG"
}

step "setup" t_setup || { lib_summary; exit 1; }
step "create, write, snapshot (rw and -r)" t_create_snapshot
step "a read-only snapshot refuses every change with EROFS" t_ro_refuses
step "SET_FLAGS (and cowfs property set ro): writable again, and back" t_ro_cleared
step "writable snapshots diverge both ways" t_diverge
step "st_ino unique; tar and rsync -aH copies add no hard links" t_unique_ino
step "rename and link across subvolumes: EXDEV" t_exdev
step "copy_file_range and CLONE_RANGE across subvolumes share extents" t_share_across
step "subvol=, subvolid=, bad values, set-default, remount" t_mount_choice
step "nested subvolume: its path, subvol= through two trees" t_nested
step "file handle into a snapshot after a remount" t_handles
step "delete: the directory goes at once; SUBVOL_SYNC gives the space back" t_delete
step "kill -9 while deleting a 20,000-file snapshot: resumed, completed, fsck clean" \
	t_kill_mid_delete
step "unprivileged: write access needed, EPERM, user_subvol_rm_allowed" t_unprivileged
step "fsck.cowfs at the end" t_final_fsck
lib_summary
