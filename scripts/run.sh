#!/bin/sh
# The main job (make run): make the default image if it is missing, check it, mount it, show it
# working, and say how to unmount. Leaves it mounted.
#   scripts/run.sh BIN IMAGE MOUNTPOINT
set -eu
BIN=$1 IMAGE=$2 MNT=$3

if [ ! -e "$IMAGE" ]; then
	"$BIN/mkfs.cowfs" -s 1G "$IMAGE"
fi
if mountpoint -q "$MNT" 2>/dev/null; then
	echo "run: $MNT is mounted already"
else
	"$BIN/fsck.cowfs" "$IMAGE"
	mkdir -p "$MNT"
	# Waits (up to 10 s) for a daemon that is still letting go of the image.
	"$BIN/cowfs" "$IMAGE" "$MNT"
fi
echo "run: mounted $IMAGE at $MNT:"
grep " $(realpath "$MNT") " /proc/mounts
date >"$MNT/hello.txt"
cp -r fs/inode "$MNT/" 2>/dev/null || true
echo "run: wrote $MNT/hello.txt: $(cat "$MNT/hello.txt")"
ls -la "$MNT"
df -h "$MNT"
echo "run: unmount with: umount $MNT   (or fusermount3 -u $MNT; the daemon commits and exits)"
