#!/usr/bin/env bash
# setuid/setgid after a change to a file, as the kernel's rules have them (issue 12 item 6):
# the same steps on cowfs and on ext4 on a loop device, the resulting modes compared line by
# line. Each step is one change to a fresh file, made by
#   in      a non-root user with the file's group among its supplementary groups
#   out     the same user without it
#   root    root (CAP_FSETID)
# to a file owned by that user (modes 6755 6745 2745 2755 4755 6711 2711 0755) or by root (the
# same with group and other write (022) added, so that the user may write it), through:
#   otrunc    open(O_TRUNC)
#   write     write(2) of one byte in place
#   odirect   the same through O_DIRECT
#   truncate  truncate(2) to a page
#   falloc    fallocate mode 0, past the end
#   punch     fallocate PUNCH_HOLE|KEEP_SIZE
#   zero      fallocate ZERO_RANGE
#   chown     chgrp to the user's own group (root: chown to the user and that group)
#   acl       setxattr system.posix_acl_access with a named-user entry (owner or root only)
#   chmod     chmod to the same mode (the kernel's rule for setgid on chmod, as a control)
# and, compared with xfs (ext4 has no reflink), a clone of a page into the file
# (FICLONERANGE; `cowfs reflink --length` on cowfs).
# Each line of the result: owner, mode before, who, step, then the exit status and the mode
# after. The kernel (fs/attr.c, fs/inode.c): a data change by a caller without CAP_FSETID
# drops setuid, and setgid if the file is group-executable or the caller is not in its group;
# chown drops setuid always and setgid the same way; an access ACL drops setgid if the caller
# is not in the group (and lacks CAP_FSETID).
#
#   bash tests/integ/test_privbits.sh
#
# Needs root (loop mount, setpriv). The mounts live in a private 0755 directory under /tmp,
# which the other user can reach wherever the checkout is. Environment: BIN (build/bin),
# COWFS_TEST_DIR, COWFS_KEEP=1, COWFS_NONROOT_UID (65534).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

lib_require_programs test_privbits
if [ "$(id -u)" -ne 0 ] || ! command -v mkfs.ext4 >/dev/null || ! command -v setpriv >/dev/null
then
	echo "test_privbits: needs root, mkfs.ext4 and setpriv: skipped"
	exit 0
fi

# A python the user can run (one under root's home is not), for setxattr of an ACL.
PY=
for p in /usr/bin/python3 /usr/local/bin/python3 "$(command -v python3)"; do
	if [ -x "$p" ] && setpriv --reuid "${COWFS_NONROOT_UID:-65534}" --regid 4243 --clear-groups \
		"$p" -c '' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
	echo "test_privbits: no python3 the non-root user can run: skipped"
	exit 0
fi

lib_init test_privbits
USER_UID=${COWFS_NONROOT_UID:-65534}
FILE_GID=4242     # the files' group
USER_GID=4243     # the user's own group, never the files'
PRIV=$(mktemp -d /tmp/cowfs-priv.XXXXXX)
chmod 0755 "$PRIV"
IMG=$WORK/cowfs.img
MNT=$PRIV/cowfs
EXT4=$PRIV/ext4
EXT4_IMG=$WORK/ext4.img
XFS=$PRIV/xfs
XFS_IMG=$WORK/xfs.img

privbits_cleanup() {
	local rc=$?
	local m
	for m in "$EXT4" "$XFS"; do
		if is_mounted "$m"; then umount "$m" || umount -l "$m"; fi
	done
	if is_mounted "$MNT"; then fusermount3 -u "$MNT" || umount -l "$MNT"; fi
	rm -f "$PRIV/cowfs-cli"
	rmdir "$MNT" "$EXT4" "$XFS" 2>/dev/null
	rmdir "$PRIV" 2>/dev/null || echo "test_privbits: kept $PRIV (not empty)" >&2
	(exit $rc)
	lib_cleanup
}
trap privbits_cleanup EXIT

# The steps, run as root in DIR; each change runs as its caller through setpriv. STEPS and
# MODES choose them; CLONE is how the clone step clones (xfs_io, or the cowfs CLI).
cat >"$WORK/steps.sh" <<'EOF'
set -u
dir=$1 uid=$2 file_gid=$3 user_gid=$4 py=$5
acl_value() {   # system.posix_acl_access: owner rwx, user 1234 r, group r-x, mask r-x, other r-x
	"$py" - <<'PY'
import struct, sys
e = [(1, 7, 0xffffffff), (2, 4, 1234), (4, 5, 0xffffffff), (0x10, 5, 0xffffffff), (0x20, 5, 0xffffffff)]
sys.stdout.write("0x" + (struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *x) for x in e)).hex())
PY
}
ACL=$(acl_value)
as() {
	case $1 in
	in) shift; setpriv --reuid "$uid" --regid "$user_gid" --groups "$file_gid" "$@" ;;
	out) shift; setpriv --reuid "$uid" --regid "$user_gid" --clear-groups "$@" ;;
	root) shift; "$@" ;;
	esac
}
change() {   # change WHO STEP FILE MODE
	local who=$1 f=$3 mode=$4
	case $2 in
	otrunc) as "$who" sh -c ': >"$1"' _ "$f" ;;
	write) as "$who" dd if=/dev/zero of="$f" bs=1 count=1 seek=100 conv=notrunc status=none ;;
	odirect) as "$who" dd if=/dev/zero of="$f" bs=4096 count=1 oflag=direct conv=notrunc status=none ;;
	truncate) as "$who" truncate -s 4096 "$f" ;;
	falloc) as "$who" fallocate -o 8192 -l 8192 "$f" ;;
	punch) as "$who" fallocate -p -o 0 -l 4096 "$f" ;;
	zero) as "$who" fallocate -z -o 0 -l 4096 "$f" ;;
	chown)
		if [ "$who" = root ]; then chown "$uid:$user_gid" "$f"
		else as "$who" chgrp "$user_gid" "$f"; fi ;;
	acl) as "$who" "$py" -c 'import os, sys; os.setxattr(sys.argv[1], "system.posix_acl_access", bytes.fromhex(sys.argv[2][2:]))' "$f" "$ACL" ;;
	chmod) as "$who" chmod "$mode" "$f" ;;
	clone)
		head -c 8192 /dev/urandom >"$dir/src" && chmod 0644 "$dir/src" || return 1
		if [ "$CLONE" = xfs_io ]; then as "$who" xfs_io -c "reflink $dir/src 0 0 4096" "$f"
		else as "$who" "$CLONE" reflink --length 4096 "$dir/src" "$f"; fi ;;
	esac
}
n=0
for owner in user root; do
	for m in $MODES; do
		mode=$m
		[ $owner = root ] && mode=$(printf "%o" $((8#$m | 8#022)))
		for who in in out root; do
			for s in $STEPS; do
				# Only the owner (or root) may chown or set an ACL or chmod.
				[ $owner = root ] && [ $who != root ] && case $s in chown|acl|chmod) continue ;; esac
				n=$((n + 1))
				f=$dir/f$n
				head -c 8192 /dev/urandom >"$f" || exit 1
				chown "$([ $owner = root ] && echo 0 || echo "$uid"):$file_gid" "$f" &&
					chmod "$mode" "$f" || exit 1
				change "$who" "$s" "$f" "$mode" >/dev/null 2>&1
				rc=$?
				echo "$owner $mode $who $s: rc $rc mode $(stat -c %a "$f")"
				rm -f "$f"
			done
		done
	done
done
EOF

MODES="6755 6745 2745 2755 4755 6711 2711 0755"
STEPS="otrunc write odirect truncate falloc punch zero chown acl chmod"

# run_steps DIR OUT [STEPS MODES CLONE]: the steps in DIR (made 0777 for the user), the
# results in OUT.
run_steps() {
	local d=$1/privbits
	mkdir -p "$d" && chmod 0777 "$d" || return 1
	STEPS=${3:-$STEPS} MODES=${4:-$MODES} CLONE=${5:-} \
		bash "$WORK/steps.sh" "$d" "$USER_UID" "$FILE_GID" "$USER_GID" "$PY" >"$2"
	local rc=$?
	rm -rf "$d"
	[ $rc -eq 0 ] && [ -s "$2" ]
}

t_setup() {
	truncate -s 256M "$EXT4_IMG" && run mkfs.ext4 -q -F "$EXT4_IMG" || { show_output; return 1; }
	mkdir -p "$EXT4" && mount -o loop "$EXT4_IMG" "$EXT4" || return 1
	cowfs_mkfs "$IMG" 1G && cowfs_mount "$IMG" "$MNT" allow_other,default_permissions
}

# same_as NAME REF GOT: the lines of GOT (cowfs) are those of REF (NAME's).
same_as() {
	local diffs
	diffs=$(diff "$2" "$3" | grep '^[<>]')
	echo "    $(wc -l <"$2") changes compared"
	[ -z "$diffs" ] && return 0
	echo "$diffs" | sed -e "s/^</    $1: /" -e 's/^>/    cowfs:/'
	return 1
}

t_compare() {
	run_steps "$EXT4" "$WORK/ext4.out" || { echo "    the steps failed on ext4"; return 1; }
	run_steps "$MNT" "$WORK/cowfs.out" || { echo "    the steps failed on cowfs"; return 1; }
	# The steps must have done something: on ext4 a write by a user drops setuid, and the
	# cases of the issue go as the kernel's rule says.
	local want
	for want in 'user 4755 out write: rc 0 mode 755' 'user 6745 in otrunc: rc 0 mode 2745' \
		'root 2767 out punch: rc 0 mode 767' 'user 2745 out acl: rc 0 mode 755'; do
		grep -qx "$want" "$WORK/ext4.out" ||
			{ echo "    ext4 did not give \"$want\": the steps are broken"; return 1; }
	done
	same_as ext4 "$WORK/ext4.out" "$WORK/cowfs.out"
}

# A clone into the file (FICLONERANGE on xfs through xfs_io, COWFS_IOC_CLONE_RANGE through
# `cowfs reflink` on cowfs) drops the bits as a write does: the remap's file_modified.
t_clone() {
	local modes="6755 6745 2745 2755 4755 0755" cli=$PRIV/cowfs-cli
	truncate -s 512M "$XFS_IMG" && run mkfs.xfs -q -f "$XFS_IMG" || { show_output; return 1; }
	mkdir -p "$XFS" && mount -o loop "$XFS_IMG" "$XFS" || return 1
	# The CLI where the user can run it, wherever the checkout is.
	cp "$COWFS" "$cli" && chmod 0755 "$cli" || return 1
	run_steps "$XFS" "$WORK/xfs.out" clone "$modes" xfs_io || { echo "    failed on xfs"; return 1; }
	run_steps "$MNT" "$WORK/cowfs-clone.out" clone "$modes" "$cli" ||
		{ echo "    the steps failed on cowfs"; return 1; }
	rm -f "$cli"
	umount "$XFS" || return 1
	grep -qx 'user 6745 out clone: rc 0 mode 745' "$WORK/xfs.out" ||
		{ echo "    xfs did not drop setuid and setgid on a clone: the steps are broken"; return 1; }
	same_as xfs "$WORK/xfs.out" "$WORK/cowfs-clone.out"
}

t_done() {
	umount "$EXT4" && cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG"
}

step "setup: ext4 and cowfs (allow_other) under $PRIV" t_setup || { lib_summary; exit 1; }
step "setuid/setgid after each change as on ext4" t_compare
if command -v mkfs.xfs >/dev/null && command -v xfs_io >/dev/null; then
	step "setuid/setgid after a clone as on xfs" t_clone
else
	skip_step "setuid/setgid after a clone as on xfs" "no mkfs.xfs or xfs_io"
fi
step "unmount, fsck" t_done
lib_summary
