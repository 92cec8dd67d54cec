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

lib_summary
