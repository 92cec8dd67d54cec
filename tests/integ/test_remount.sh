#!/bin/bash
# The mount's life as mount(8) sees it (issue 12):
#   item 16: a mount of an image already in use says at once that it waits, and for which pid;
#   item 12: remount ro / rw / commit= on a live mount, through the helper as mount(8) runs it
#            (mount.fuse.cowfs IMAGE MNT -o remount,ro) and, where installed, mount(8) itself.
# Everything mounted is unmounted by lib.sh's trap.
set -u
. "$(dirname "$0")/lib.sh"
lib_init remount

IMG=$WORK/img
MNT=$WORK/mnt
MNT2=$WORK/mnt2

# ---- item 16 -----------------------------------------------------------------------------------

# A second mount waits for the first daemon to let go. It must say so, naming the daemon's pid,
# while it is still waiting (its message is in the file before it exits), and mount once the
# first mount is gone.
second_mount_says_it_waits() {
	local pid second i said=1
	cowfs_mount "$IMG" "$MNT" || return 1
	pid=$(cowfs_pids "$IMG")
	mkdir -p "$MNT2"
	LIB_MOUNTS+=("$MNT2")
	"$COWFS" "$IMG" "$MNT2" 2>"$WORK/second.err" &
	second=$!
	while kill -0 "$second" 2>/dev/null; do
		if grep -q "in use by process $pid: waiting" "$WORK/second.err"; then
			said=0
			break
		fi
		sleep 0.05
	done
	if [ $said -ne 0 ]; then
		echo "    the second mount exited without saying it waits for pid $pid:"
		sed 's/^/    | /' "$WORK/second.err"
		wait "$second"
		cowfs_umount "$MNT" "$IMG"
		return 1
	fi
	# Not cowfs_umount: it waits for every process holding the image, the second one too.
	fusermount3 -u "$MNT" || return 1
	if ! wait "$second"; then
		echo "    the second mount failed after the first let go:"
		sed 's/^/    | /' "$WORK/second.err"
		return 1
	fi
	wait_mounted "$MNT2" || { echo "    $MNT2 not mounted"; return 1; }
	echo hello >"$MNT2/after" || return 1
	cowfs_umount "$MNT2" "$IMG" && run_fsck "$IMG"
}

cowfs_mkfs "$IMG" 256M || exit 1
step "item 16: a mount of an image in use says at once it waits, with the pid" \
	second_mount_says_it_waits

# ---- item 12 -----------------------------------------------------------------------------------

HELPER=$WORK/mount.fuse.cowfs   # what make install puts in /sbin: the cowfs program by that name
ln -sf "$(realpath "$COWFS")" "$HELPER"


mount_flag() { findmnt -rn -o OPTIONS --mountpoint "$(abspath "$1")" | cut -d, -f1; }
server_ro() { "$COWFS" status "$1" | grep -qi "read-only"; }

remount_ro_rw() {
	cowfs_mount "$IMG" "$MNT" || return 1
	echo before >"$MNT/a" || return 1
	"$HELPER" "$IMG" "$MNT" -o remount,ro || { echo "    remount,ro failed"; return 1; }
	[ "$(mount_flag "$MNT")" = ro ] || { echo "    /proc/mounts: not ro"; return 1; }
	server_ro "$MNT" || { echo "    the server does not say read-only"; return 1; }
	if echo x 2>"$WORK/w.err" >"$MNT/b"; then echo "    a write worked read-only"; return 1; fi
	grep -q "Read-only file system" "$WORK/w.err" || { cat "$WORK/w.err"; return 1; }
	[ "$(cat "$MNT/a")" = before ] || { echo "    data lost"; return 1; }
	"$HELPER" "$IMG" "$MNT" -o remount,rw,commit=2 || { echo "    remount,rw failed"; return 1; }
	[ "$(mount_flag "$MNT")" = rw ] || { echo "    /proc/mounts: not rw"; return 1; }
	server_ro "$MNT" && { echo "    the server still says read-only"; return 1; }
	echo after >"$MNT/b" || { echo "    a write failed after rw"; return 1; }
	# The same through mount(8), which runs the helper where it looks.
	if lib_sbin_helper; then
		mount -o remount,ro "$MNT" || { echo "    mount -o remount,ro failed"; return 1; }
		[ "$(mount_flag "$MNT")" = ro ] && server_ro "$MNT" ||
			{ echo "    mount -o remount,ro: not read-only"; return 1; }
		mount -o remount,rw,commit=3 "$MNT" || { echo "    mount -o remount,rw failed"; return 1; }
		[ "$(mount_flag "$MNT")" = rw ] && ! server_ro "$MNT" ||
			{ echo "    mount -o remount,rw: still read-only"; return 1; }
		echo "    mount(8) -o remount,ro and remount,rw,commit=3: done"
	fi
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG" || return 1
	cowfs_mount "$IMG" "$MNT" || return 1
	[ "$(cat "$MNT/a")$(cat "$MNT/b")" = beforeafter ] || { echo "    data not committed"; return 1; }
	cowfs_umount "$MNT" "$IMG"
}

remount_refusals() {
	# A mount read-only from the start cannot turn writable: said clearly, kernel left ro.
	cowfs_mount "$IMG" "$MNT" ro || return 1
	if "$HELPER" "$IMG" "$MNT" -o remount,rw 2>"$WORK/r.err"; then
		echo "    remount,rw of a ro mount worked"; return 1
	fi
	grep -q "mounted read-only" "$WORK/r.err" || { cat "$WORK/r.err"; return 1; }
	[ "$(mount_flag "$MNT")" = ro ] || return 1
	cowfs_umount "$MNT" "$IMG" || return 1
	# A file open for writing keeps the mount writable (EBUSY), as on any filesystem.
	cowfs_mount "$IMG" "$MNT" || return 1
	exec 7>"$MNT/open"
	if "$HELPER" "$IMG" "$MNT" -o remount,ro 2>"$WORK/r.err"; then
		exec 7>&-; echo "    remount,ro with a file open for writing worked"; return 1
	fi
	exec 7>&-
	grep -q "open for writing" "$WORK/r.err" || { cat "$WORK/r.err"; return 1; }
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG"
}

step "item 12: remount,ro then remount,rw,commit=2 through mount.fuse.cowfs and mount(8)" \
	remount_ro_rw
step "item 12: remount refusals are clear (ro from the start, file open for writing)" \
	remount_refusals

lib_summary
