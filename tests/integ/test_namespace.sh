#!/usr/bin/env bash
# Namespace and metadata behaviour a kernel filesystem has (issue 12, items 5, 7, 9, 10), each
# checked on cowfs and, where the expected behaviour is the kernel's, the same steps on ext4 or
# xfs on a loop device, the results compared:
#   readdir    a directory whose entries are renamed within it as they are read: the listing
#              ends and gives each entry at most twice (ext4 too)
#   atime      relatime (default), strictatime, noatime, nodiratime: atime after read and
#              readdir as ext4 sets it under the same options; read-only mounts never change it
#   whiteout   renameat2(RENAME_WHITEOUT) leaves a 0/0 character device at the source (as
#              ext4); overlayfs over cowfs, if the kernel takes a FUSE upper directory
#   xattr      values of 0..65536 bytes under user.* and trusted.* set, size-queried (ERANGE a
#              byte short), replaced large by small and small by large, read back, listed:
#              the answers xfs gives; 65537 bytes E2BIG; kept across unmount, fsck and
#              remount; removed, fsck clean
#
#   bash tests/integ/test_namespace.sh
#
# Environment: BIN (build/bin), COWFS_TEST_DIR, COWFS_KEEP=1. Root is needed for the loop
# mounts; without it (or without mkfs.ext4 / mkfs.xfs) the comparisons are skipped and say so.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

lib_require_programs test_namespace

lib_init test_namespace
IMG=$WORK/cowfs.img
MNT=$WORK/mnt
EXT4=$WORK/ext4
XFS=$WORK/xfs
HAVE_EXT4=0
HAVE_XFS=0

loop_umount() { umount "$1"; }

# A step that failed halfway may have left the mount up: the next one starts without it.
cowfs_unmounted() {
	! is_mounted "$MNT" || cowfs_umount "$MNT" "$IMG"
}

cowfs_fresh() {
	cowfs_unmounted || return 1
	cowfs_mkfs "$IMG" 1G && cowfs_mount "$IMG" "$MNT" "${1:-}"
}

cowfs_done() {
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG"
}

# ---- item 5: readdir ends -------------------------------------------------------------------

# readdir_renaming DIR N: N files in DIR, then one listing that renames each entry it reads
# to a new name in DIR; prints the number of entries the listing gave (it gives up at 4N).
cat >"$WORK/readdir_renaming.py" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
for i in range(n):
    open(os.path.join(d, "f%d" % i), "w").close()
seen = 0
with os.scandir(d) as it:
    for e in it:
        seen += 1
        if seen > 4 * n:
            break
        os.rename(os.path.join(d, e.name), os.path.join(d, e.name + "r"))
print(seen)
EOF
readdir_renaming() { timeout 300 python3 "$WORK/readdir_renaming.py" "$@"; }

t_readdir() {
	local n=5000 got ref=
	cowfs_fresh || return 1
	got=$(readdir_renaming "$MNT/d" $n) || { echo "    listing failed"; return 1; }
	echo "    cowfs: $got entries read from a $n-entry directory renamed within itself"
	if [ "$HAVE_EXT4" = 1 ]; then
		ref=$(readdir_renaming "$EXT4/d" $n) || return 1
		echo "    ext4: $ref entries"
	fi
	cowfs_done || return 1
	# Each entry once, and at most once more if renamed before it was read.
	[ "$got" -ge $n ] && [ "$got" -le $((2 * n)) ] || { echo "    expected $n..$((2 * n))"; return 1; }
	[ -z "$ref" ] || [ "$ref" -le $((2 * n)) ]
}

# ---- item 7: atime -------------------------------------------------------------------------

OLD=1000000000   # an atime long past: 2001

# atime_cases DIR: what reads do to atimes in DIR, one line per case: "CASE updated|kept".
atime_cases() {
	local d=$1 a b
	mkdir -p "$d/sub" && echo data >"$d/f" && touch "$d/sub/x" || return 1
	# atime and mtime long past, ctime now: every rule but noatime updates.
	touch -d "@$OLD" "$d/f" && touch -a -d "@$OLD" "$d/sub" || return 1
	cat "$d/f" >/dev/null
	a=$(stat -c %x "$d/f")
	[ "$(stat -c %X "$d/f")" -gt $OLD ] && echo "old-atime read: updated" || echo "old-atime read: kept"
	# A second read, atime now after mtime and ctime: relatime keeps it.
	sleep 0.05
	cat "$d/f" >/dev/null
	b=$(stat -c %x "$d/f")
	[ "$a" != "$b" ] && echo "second read: updated" || echo "second read: kept"
	ls "$d/sub" >/dev/null
	[ "$(stat -c %X "$d/sub")" -gt $OLD ] && echo "directory read: updated" ||
		echo "directory read: kept"
	# O_NOATIME (the owner may ask): never.
	touch -a -d "@$OLD" "$d/f"
	python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY|os.O_NOATIME); os.read(fd, 9); os.close(fd)' "$d/f"
	[ "$(stat -c %X "$d/f")" -gt $OLD ] && echo "O_NOATIME read: updated" ||
		echo "O_NOATIME read: kept"
}

# atime_ro DIR: the file f of DIR, whose atime is long past, read on a read-only mount.
atime_ro() {
	cat "$1/f" >/dev/null
	ls "$1" >/dev/null
	echo "read-only file: $(stat -c %X "$1/f")"
	echo "read-only directory: $(stat -c %X "$1")"
}

ext4_remount() {
	umount "$EXT4" && mount -o "loop${1:+,$1}" "$WORK/ext4.img" "$EXT4"
}

# t_atime OPTS: the cases under mount options OPTS (empty: the default), cowfs against ext4.
t_atime() {
	local opts=$1 tag=${1:-default} got ref
	cowfs_unmounted || return 1
	cowfs_mount "$IMG" "$MNT" "$opts" || return 1
	got=$(atime_cases "$MNT/atime-$tag")
	cowfs_umount "$MNT" "$IMG" || return 1
	echo "$got" | sed 's/^/    cowfs: /'
	[ "$HAVE_EXT4" = 1 ] || { echo "    (no ext4 to compare with)"; [ -n "$got" ]; return; }
	ext4_remount "$opts" || return 1
	ref=$(atime_cases "$EXT4/atime-$tag")
	[ "$got" = "$ref" ] && return 0
	echo "$ref" | sed 's/^/    ext4:  /'
	return 1
}

t_atime_setup() {
	cowfs_mkfs "$IMG" 1G
}

# Read-only: atime stays what it was, on cowfs and ext4.
t_atime_ro() {
	local got ref
	cowfs_unmounted && cowfs_mount "$IMG" "$MNT" || return 1
	mkdir "$MNT/ro" && echo data >"$MNT/ro/f" && touch -a -d "@$OLD" "$MNT/ro/f" "$MNT/ro" || return 1
	cowfs_umount "$MNT" "$IMG" && cowfs_mount "$IMG" "$MNT" ro || return 1
	got=$(atime_ro "$MNT/ro")
	cowfs_umount "$MNT" "$IMG" || return 1
	echo "$got" | sed 's/^/    cowfs: /'
	[ "$got" = "$(printf 'read-only file: %s\nread-only directory: %s' $OLD $OLD)" ] || return 1
	[ "$HAVE_EXT4" = 1 ] || return 0
	ext4_remount && mkdir "$EXT4/ro" && echo data >"$EXT4/ro/f" &&
		touch -a -d "@$OLD" "$EXT4/ro/f" "$EXT4/ro" && ext4_remount ro || return 1
	ref=$(atime_ro "$EXT4/ro")
	ext4_remount || return 1
	[ "$got" = "$ref" ] || { echo "    ext4: $ref"; return 1; }
}

# An atime update commits nothing itself: with commit=3600, a daemon killed after a read
# leaves the atime of the last commit; one unmounted cleanly leaves the new one.
t_atime_no_commit() {
	local pids
	cowfs_unmounted && cowfs_mount "$IMG" "$MNT" commit=3600 || return 1
	mkdir "$MNT/nc" && echo data >"$MNT/nc/f" && touch -a -d "@$OLD" "$MNT/nc/f" && sync -f "$MNT/nc/f" ||
		return 1
	cowfs_umount "$MNT" "$IMG" && cowfs_mount "$IMG" "$MNT" commit=3600 || return 1
	cat "$MNT/nc/f" >/dev/null
	[ "$(stat -c %X "$MNT/nc/f")" -gt $OLD ] || { echo "    atime not updated at all"; return 1; }
	pids=$(cowfs_pids "$(abspath "$IMG")")
	kill -KILL $pids && fusermount3 -uz "$MNT" && wait_daemon_exit "$(abspath "$IMG")" || return 1
	cowfs_mount "$IMG" "$MNT" commit=3600 || return 1
	[ "$(stat -c %X "$MNT/nc/f")" = $OLD ] || { echo "    the atime update was committed on its own"; return 1; }
	cat "$MNT/nc/f" >/dev/null
	cowfs_done || return 1
	cowfs_mount "$IMG" "$MNT" || return 1
	[ "$(stat -c %X "$MNT/nc/f")" -gt $OLD ] || { echo "    the atime did not last the unmount"; return 1; }
	cowfs_done
}

# ---- item 9: RENAME_WHITEOUT, overlayfs, O_TMPFILE ------------------------------------------

cat >"$WORK/whiteout.py" <<'EOF'
import ctypes, errno, os, stat, sys
libc = ctypes.CDLL(None, use_errno=True)
NOREPLACE, EXCHANGE, WHITEOUT = 1, 2, 4
d = sys.argv[1]
os.makedirs(d + "/sub")
def rename2(a, b, flags):
    r = libc.renameat2(-100, os.fsencode(d + "/" + a), -100, os.fsencode(d + "/" + b), flags)
    return "ok" if r == 0 else errno.errorcode[ctypes.get_errno()]
def show(name):
    try:
        st = os.lstat(d + "/" + name)
    except FileNotFoundError:
        return name + ": none"
    return "%s: %s %o %d:%d links %d" % (name, stat.filemode(st.st_mode), stat.S_IMODE(st.st_mode),
        os.major(st.st_rdev), os.minor(st.st_rdev), st.st_nlink)
for n in ("a", "c", "e"):
    open(d + "/" + n, "w").write(n)
print("whiteout a->b", rename2("a", "b", WHITEOUT), show("a"), show("b"))
print("whiteout c->sub/c", rename2("c", "sub/c", WHITEOUT), show("c"), show("sub/c"))
print("whiteout over e", rename2("b", "e", WHITEOUT), show("b"), show("e"))
print("whiteout|noreplace onto e", rename2("sub/c", "e", WHITEOUT | NOREPLACE))
print("whiteout|exchange", rename2("sub/c", "e", WHITEOUT | EXCHANGE))
os.mkdir(d + "/dir")
print("whiteout of a directory", rename2("dir", "dir2", WHITEOUT), show("dir"), show("dir2"))
print("unlink a whiteout", os.unlink(d + "/a") or show("a"))
EOF

t_whiteout() {
	local got ref
	cowfs_fresh || return 1
	got=$(python3 "$WORK/whiteout.py" "$MNT/w")
	cowfs_done || return 1
	echo "$got" | sed 's/^/    cowfs: /'
	echo "$got" | grep -q "^whiteout a->b ok a: c--------- 0 0:0 links 1 b: -" || return 1
	[ "$HAVE_EXT4" = 1 ] || return 0
	ref=$(python3 "$WORK/whiteout.py" "$EXT4/w")
	[ "$got" = "$ref" ] || { echo "$ref" | sed 's/^/    ext4:  /'; return 1; }
}

# overlay_steps MERGED UPPER: what overlayfs leaves in its upper layer for a rename and a
# removal of lower files, and a directory made opaque.
overlay_steps() {
	local m=$1 u=$2
	mv "$m/lower1" "$m/renamed" && rm "$m/lower2" && rm -r "$m/ldir" && mkdir "$m/ldir" &&
		echo new >"$m/ldir/n" || return 1
	ls "$m" | tr '\n' ' '; echo
	cat "$m/renamed"
	find "$u" -mindepth 1 -printf '%P %y %m\n' | sort
	[ -c "$u/lower1" ] && [ -c "$u/lower2" ] && [ ! -e "$m/lower1" ]
}

# overlayfs with a cowfs upper and work directory (lower on the test directory's filesystem):
# it needs RENAME_WHITEOUT and trusted.* xattrs; compared with an ext4 upper.
t_overlay() {
	local got ref lower=$WORK/lower
	[ "$(id -u)" -eq 0 ] || { echo "    not root: skipped"; return 0; }
	mkdir -p "$lower/ldir" "$WORK/ov" && echo one >"$lower/lower1" && echo two >"$lower/lower2" &&
		echo x >"$lower/ldir/x" || return 1
	cowfs_fresh || return 1
	mkdir "$MNT/up" "$MNT/work" || return 1
	LIB_MOUNTS+=("$(abspath "$WORK/ov")")
	if ! mount -t overlay overlay -o "lowerdir=$lower,upperdir=$MNT/up,workdir=$MNT/work" "$WORK/ov"; then
		dmesg | tail -3 | sed 's/^/    /'
		cowfs_done
		return 1
	fi
	dmesg | tail -5 | grep overlayfs | sed 's/^/    kernel: /'
	got=$(overlay_steps "$WORK/ov" "$MNT/up") || { echo "$got"; umount "$WORK/ov"; return 1; }
	umount "$WORK/ov" && cowfs_done || return 1
	echo "$got" | sed 's/^/    cowfs upper: /'
	[ "$HAVE_EXT4" = 1 ] || return 0
	mkdir "$EXT4/up" "$EXT4/work" && mount -t overlay overlay \
		-o "lowerdir=$lower,upperdir=$EXT4/up,workdir=$EXT4/work" "$WORK/ov" || return 1
	ref=$(overlay_steps "$WORK/ov" "$EXT4/up")
	umount "$WORK/ov"
	[ "$got" = "$ref" ] || { echo "$ref" | sed 's/^/    ext4 upper:  /'; return 1; }
}

# O_TMPFILE: the kernel sends FUSE_TMPFILE, which libfuse 3.14 has no handler for (ENOSYS):
# the kernel then says EOPNOTSUPP, as README and DESIGN say.
t_tmpfile() {
	local got
	cowfs_fresh || return 1
	got=$(python3 -c '
import os, sys
try:
    os.close(os.open(sys.argv[1], os.O_TMPFILE | os.O_RDWR, 0o600)); print("opened")
except OSError as e:
    print(os.strerror(e.errno))' "$MNT")
	cowfs_done || return 1
	echo "    O_TMPFILE: $got"
	[ "$got" = "$(python3 -c 'import errno, os; print(os.strerror(errno.EOPNOTSUPP))')" ]
}

# ---- item 10: xattr values up to 64 KiB ----------------------------------------------------

# xattr.py MODE FILE: MODE set (create FILE, set the values, the answers as lines), check (read
# them back), remove. Every value a deterministic pattern of its name and length.
cat >"$WORK/xattr.py" <<'EOF'
import ctypes, errno, os, random, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.getxattr.restype = ctypes.c_ssize_t
mode, f = sys.argv[1], sys.argv[2]
BIG = ("user.big", "trusted.big")
SIZES = {"user.s0": 0, "user.s1": 1, "user.s15999": 15999, "user.s16000": 16000,
         "user.s16001": 16001, "user.s32768": 32768, "trusted.s65536": 65536}
def pattern(name, n):
    return random.Random("%s/%d" % (name, n)).randbytes(n)
def err(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
def c_getxattr(name, size):
    buf = ctypes.create_string_buffer(size) if size else None
    r = libc.getxattr(os.fsencode(f), name.encode(), buf, size)
    if r < 0:
        return errno.errorcode[ctypes.get_errno()]
    return "%d%s" % (r, "" if not size or buf.raw[:r] == pattern(name, r) else " (wrong bytes)")
def same(name, n):
    try:
        return "equal" if os.getxattr(f, name) == pattern(name, n) else "differs"
    except OSError as e:
        return errno.errorcode[e.errno]
# What `check` expects after `set`.
EXPECT = dict(SIZES, **{n: 65536 for n in BIG}, **{"user.grow": 40000, "user.shrink": 10})
if mode == "set":
    open(f, "w").close()
    for n in BIG:
        print(n, "65537 bytes:", err(lambda: os.setxattr(f, n, pattern(n, 65537))))
        print(n, "65536 bytes:", err(lambda: os.setxattr(f, n, pattern(n, 65536))))
        print(n, "size query:", c_getxattr(n, 0))
        print(n, "65535-byte buffer:", c_getxattr(n, 65535))
        print(n, "65536-byte buffer:", c_getxattr(n, 65536))
        print(n, "create again:", err(lambda: os.setxattr(f, n, b"x", os.XATTR_CREATE)))
    for n, size in SIZES.items():
        print(n, "set:", err(lambda: os.setxattr(f, n, pattern(n, size))), same(n, size))
    # Small replaced by large and large by small, both ways and back.
    for n, sizes in (("user.grow", (10, 65536, 40000)), ("user.shrink", (65536, 10))):
        for size in sizes:
            print(n, size, err(lambda: os.setxattr(f, n, pattern(n, size))), same(n, size))
if mode in ("set", "check"):
    for n, size in sorted(EXPECT.items()):
        print(n, "read back:", same(n, size))
    print("names:", ",".join(sorted(os.listxattr(f))))
if mode == "remove":
    for n in sorted(EXPECT):
        print(n, "remove:", err(lambda: os.removexattr(f, n)), same(n, 0))
    print("names left:", ",".join(sorted(os.listxattr(f))))
EOF
xattr_py() { python3 "$WORK/xattr.py" "$@"; }

# The same sets, reads, replacements and removals on cowfs and xfs: the same answers; on
# cowfs the values last an unmount, fsck and a remount, and their removal leaves fsck clean.
# dump_xattrs: what `cowfs dump` shows of the image's xattrs: the superblock's BIG_XATTR bit
# (incompat 0x2), spilled entries of 65536 bytes, value pieces.
dump_xattrs() {
	local flags
	flags=$("$COWFS" dump --super "$IMG" | sed -n 's/^[[:space:]]*incompat_flags[[:space:]]*//p')
	echo "BIG_XATTR $(( flags & 2 ? 1 : 0 ))"
	"$COWFS" dump --tree fs "$IMG" >"$WORK/dump.txt" || echo "dump failed"
	echo "spilled $(grep -c 'xattr name "[^"]*" value_len 65536 value_key [0-9]*$' "$WORK/dump.txt")"
	echo "pieces $(grep -c 'XATTR_VALUE.*itemsize' "$WORK/dump.txt")"
}

t_xattr() {
	local got ref after gone stored freed
	cowfs_fresh || return 1
	got=$(xattr_py set "$MNT/x") || { echo "$got"; return 1; }
	cowfs_done || return 1
	stored=$(dump_xattrs)
	cowfs_mount "$IMG" "$MNT" || return 1
	after=$(xattr_py check "$MNT/x")
	gone=$(xattr_py remove "$MNT/x")
	cowfs_done || return 1
	freed=$(dump_xattrs)
	echo "    dump with the values: $stored" | tr '\n' ' '; echo
	echo "    dump after removal: $freed" | tr '\n' ' '; echo
	# 65536 bytes in pieces: user.big, trusted.big, trusted.s65536 (user.grow's 40000 too).
	echo "$stored" | grep -qx "BIG_XATTR 1" && echo "$stored" | grep -qx "spilled 3" &&
		! echo "$stored" | grep -qx "pieces 0" || return 1
	[ "$freed" = "$(printf 'BIG_XATTR 1\nspilled 0\npieces 0')" ] || return 1
	echo "$got" | sed 's/^/    cowfs: /'
	echo "$gone" | grep -v "remove: ok ENODATA$" | sed 's/^/    cowfs removal: /'
	[ "$after" = "$(echo "$got" | grep -A999 'read back:' )" ] ||
		{ echo "$after" | sed 's/^/    after remount: /'; return 1; }
	[ "$(echo "$gone" | grep -vc "remove: ok ENODATA$")" = 1 ] &&
		echo "$gone" | grep -qx "names left: " || return 1
	echo "$got" | grep -q "^user.big 65536 bytes: ok$" || return 1
	[ "$HAVE_XFS" = 1 ] || { echo "    (no xfs to compare with)"; return 0; }
	ref=$(xattr_py set "$XFS/x")
	[ "$got" = "$ref" ] || { echo "$ref" | sed 's/^/    xfs:   /'; return 1; }
}

# ---- setup and the steps --------------------------------------------------------------------

t_setup() {
	if loop_fs ext4 "$EXT4"; then HAVE_EXT4=1; else echo "    no ext4 loop mount: skipped"; fi
	if loop_fs xfs "$XFS"; then HAVE_XFS=1; else echo "    no xfs loop mount: skipped"; fi
	return 0
}

step setup t_setup
step "readdir of a directory renamed within itself ends" t_readdir
step "atime: fresh image" t_atime_setup
for o in "" relatime strictatime noatime nodiratime strictatime,nodiratime; do
	step "atime: ${o:-default} as ext4" t_atime "$o"
done
step "atime: never on a read-only mount" t_atime_ro
step "atime: no commit of its own" t_atime_no_commit
step "renameat2 RENAME_WHITEOUT as ext4" t_whiteout
step "overlayfs over a cowfs upper directory" t_overlay
step "O_TMPFILE: EOPNOTSUPP, as documented" t_tmpfile
step "xattr values of 0..65536 bytes as xfs, kept across a remount, fsck clean" t_xattr
lib_summary
