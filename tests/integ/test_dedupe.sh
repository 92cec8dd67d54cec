#!/usr/bin/env bash
# Integration tests of `cowfs dedupe` on a real mount: a tree whose data is half duplicate
# (identical files with an unaligned tail, files sharing aligned chunks with a longer one, a
# file whose duplicate chunks keep its extent alive, chunks duplicated at other offsets, unique
# files), deduped with -r, then checked: content unchanged (sha256), bytes deduped and freed
# equal to what the construction says, the freed figure equal to the free-space change, the
# destinations shared (FIEMAP), a second run finding nothing, fsck clean (exact refcounts);
# also --dry-run changing nothing, passes under a small --memory finding the same duplicates,
# a destination modified between hashing and dedupe (COWFS_DEDUPE_TEST_PAUSE), by write or
# through mmap (its page still dirty in the kernel), reporting
# differing bytes and keeping its new content, a destination open for writing elsewhere, the
# argument errors. Every JSON report is parsed with python3.
#
#   bash tests/integ/test_dedupe.sh
#
# Environment: BIN (build/bin), COWFS_TEST_DIR (scratch, default /tmp), COWFS_KEEP=1.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

lib_require_programs test_dedupe
command -v python3 >/dev/null || { echo "test_dedupe: python3 is missing" >&2; exit 1; }

lib_init test_dedupe
IMG=$WORK/cowfs.img
MNT=$WORK/mnt
TREE=$MNT/tree
PY=$WORK/dd.py
CHUNK=131072

# ---- the python side: building the tree, FIEMAP, digests, free space, JSON ------------------
cat >"$PY" <<'PYEOF'
import fcntl, hashlib, json, os, random, struct, sys

CHUNK = 131072
BATCH = 64
# _IOWR(0xCF, 5, struct cowfs_ioc_fiemap): 32-byte header, 64 extents of 32 bytes
FIEMAP_SIZE = 32 + BATCH * 32
IOC_FIEMAP = (3 << 30) | (FIEMAP_SIZE << 16) | (0xCF << 8) | 5
EXT_LAST, EXT_SHARED = 0x1, 0x2000
IOC_SYNC = (0xCF << 8) | 7          # _IO(0xCF, 7)

def chunk(seed):
    return random.Random(seed).randbytes(CHUNK)

def write_once(path, data, offset):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.pwrite(fd, data, offset)
    os.fsync(fd)
    os.close(fd)

def write(path, data, offset=0):
    """One write of at most 1 MiB (one FUSE request) and fsync: one extent, unless a background
    flush came in between; then write it again, so that the figures the test expects, which
    depend on extents, hold (checked in t_setup)."""
    for _ in range(5):
        write_once(path, data, offset)
        if len(fiemap(path)) == 1:
            return

def fiemap(path):
    out, start = [], 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            buf = bytearray(FIEMAP_SIZE)
            struct.pack_into("=IIQQ", buf, 0, 1, 0, start, (1 << 64) - 1)
            fcntl.ioctl(fd, IOC_FIEMAP, buf)
            count = struct.unpack_from("=I", buf, 24)[0]
            for i in range(count):
                lo, ph, ln, fl = struct.unpack_from("=QQQI", buf, 32 + 32 * i)
                out.append({"logical": lo, "physical": ph, "length": ln, "flags": fl})
            if count == 0 or out[-1]["flags"] & EXT_LAST:
                return out
            start = out[-1]["logical"] + out[-1]["length"]
    finally:
        os.close(fd)

def build(tree):
    """The tree; prints what dedupe must find: bytes deduped, and the files whose extents it
    must free entirely (the test adds their extent lengths)."""
    os.makedirs(tree + "/sub/deeper", exist_ok=True)
    c = {n: chunk(n) for n in "abcdefghxyklmnuvw"}
    tail = random.Random("tail").randbytes(5000)
    dup = b"".join(chunk("dup%d" % i) for i in range(7)) + tail
    write(tree + "/uniq1", b"".join(chunk("u%d" % i) for i in range(8)))
    write(tree + "/dupA", dup)
    write(tree + "/sub/dupB", dup)
    write(tree + "/sub/deeper/dupC", dup)
    write(tree + "/part1", b"".join(c[n] for n in "abcdefgh"))
    write(tree + "/part2", b"".join(c[n] for n in "abcd"))
    write(tree + "/sub/part3", b"".join(c[n] for n in "abxy"))
    write(tree + "/shift1", b"".join(c[n] for n in "klmn"))
    write(tree + "/sub/shift2", b"".join(c[n] for n in "klm"), CHUNK)
    write(tree + "/small", chunk("s")[:4096])
    deduped = 2 * len(dup) + 4 * CHUNK + 2 * CHUNK + 3 * CHUNK
    print(json.dumps({"deduped": deduped,
                      "freed_files": ["sub/dupB", "sub/deeper/dupC", "part2", "sub/shift2"],
                      "one_extent": ["uniq1", "dupA", "sub/dupB", "sub/deeper/dupC", "part1",
                                     "part2", "sub/part3", "shift1", "sub/shift2"]}))

def build_pairs(tree):
    """Identical pairs p<i>/q<i>, each file written in appends, the eight files in turn, with
    a commit (COWFS_IOC_SYNC) after each round: data is placed on disk at the commit, so each
    file is several extents, whose boundaries are not chunk-aligned and differ between the two
    copies of a pair: p's extents are in turn shorter and longer than q's (a choice of the copy
    kept by extent length, chunk by chunk, would keep part of each). The
    appends are whole blocks (a partial last block rewritten by the next append would leave
    its old copy pinned in the earlier extent); some files end in a partial chunk, two in a
    partial block. Prints the bytes of one copy of each (what dedupe must share) and their
    blocks (what it must free)."""
    os.makedirs(tree, exist_ok=True)
    sizes = [(1 << 20) + 5000, 2 << 20, (3 << 20) - 4096 + 77, 640 << 10]
    data = [random.Random("pair%d" % i).randbytes(n) for i, n in enumerate(sizes)]
    names = ["%s/%s%d" % (tree, side, i) for i in range(len(sizes)) for side in "pq"]
    fds = {n: os.open(n, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
           for n in names}
    step = {"p": lambda i, r: (136 << 10 if r % 2 else 520 << 10) + 4096 * i,
            "q": lambda i, r: (328 << 10) - 4096 * i}
    pos = {n: 0 for n in names}
    rounds = 0
    while any(pos[n] < len(data[int(n[-1])]) for n in names):
        rounds += 1
        for n in names:
            d = data[int(n[-1])]
            piece = d[pos[n]:pos[n] + step[n[-2]](int(n[-1]), rounds)]
            pos[n] += len(piece)
            if piece:
                os.write(fds[n], piece)
        fcntl.ioctl(fds[names[0]], IOC_SYNC)
    for fd in fds.values():
        os.close(fd)
    for i, d in enumerate(data):
        for side in "pq":
            assert open("%s/%s%d" % (tree, side, i), "rb").read() == d
    print(json.dumps({"deduped": sum(sizes), "freed": sum((n + 4095) & ~4095 for n in sizes)}))

def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "build":
        build(args[0])
    elif cmd == "build_pairs":
        build_pairs(args[0])
    elif cmd == "fiemap":
        print(json.dumps(fiemap(args[0])))
    elif cmd == "extents":          # FILE: how many extents
        print(len(fiemap(args[0])))
    elif cmd == "extent_bytes":     # FILES...: their extents' lengths added up
        print(sum(e["length"] for f in args for e in fiemap(f)))
    elif cmd == "shared":           # FILE START END: is every byte of [START, END) shared?
        f, s, e = args[0], int(args[1]), int(args[2])
        pos = s
        for x in fiemap(f):
            if x["logical"] <= pos < x["logical"] + x["length"]:
                if not x["flags"] & EXT_SHARED:
                    break
                pos = x["logical"] + x["length"]
            if pos >= e:
                break
        print("yes" if pos >= e else "no")
    elif cmd == "any_shared":
        print("yes" if any(x["flags"] & EXT_SHARED for x in fiemap(args[0])) else "no")
    elif cmd == "digest":           # DIR: sha256 of every file, by relative path
        out = []
        for root, _, files in os.walk(args[0]):
            for n in sorted(files):
                p = os.path.join(root, n)
                out.append("%s %s" % (hashlib.sha256(open(p, "rb").read()).hexdigest(),
                                      os.path.relpath(p, args[0])))
        print("\n".join(sorted(out)))
    elif cmd == "free":             # MNT: free bytes
        st = os.statvfs(args[0])
        print(st.f_bfree * st.f_frsize)
    elif cmd == "get":              # JSONFILE KEY...: the values, one a line
        d = json.load(open(args[0]))
        for k in args[1:]:
            v = d
            for part in k.split("."):
                v = v[part]
            print(json.dumps(v))
    elif cmd == "modify":           # FILE OFFSET: write 4 KiB of new data there, print its sha256
        fd = os.open(args[0], os.O_WRONLY)
        os.pwrite(fd, random.Random("new").randbytes(4096), int(args[1]))
        os.fsync(fd)
        os.close(fd)
        print(hashlib.sha256(open(args[0], "rb").read()).hexdigest())
    elif cmd == "mmap_modify":      # FIFO PID FILE OFFSET: see t_changed_mmap; prints the sha256
        import mmap, time
        fifo = os.open(args[0], os.O_WRONLY)     # returns once the tool has hashed
        fd = os.open(args[2], os.O_RDWR)
        m = mmap.mmap(fd, 0)
        new = random.Random("mmap").randbytes(4096)
        m[int(args[3]):int(args[3]) + 4096] = new
        want = m[:]    # not through another open: its close (FUSE flush) would write back
        os.close(fifo)                           # the tool goes on to dedupe
        for _ in range(6000):                    # the dirty page stays mapped until it is done
            if not os.path.exists("/proc/%s" % args[1]):
                break
            time.sleep(0.01)
        m.close()
        os.close(fd)
        print(hashlib.sha256(want).hexdigest())
    elif cmd == "sync":             # PATH: COWFS_IOC_SYNC
        fd = os.open(args[0], os.O_RDONLY)
        fcntl.ioctl(fd, IOC_SYNC)
        os.close(fd)
    elif cmd == "sha":
        print(hashlib.sha256(open(args[0], "rb").read()).hexdigest())
    else:
        sys.exit("unknown command " + cmd)

main()
PYEOF

py() { python3 "$PY" "$@"; }

# get KEY: a field of the last JSON report ($WORK/out.json)
get() { py get "$WORK/out.json" "$1"; }

# expect WHAT GOT WANT
expect() {
	if [ "$2" != "$3" ]; then
		echo "    $1: got $2, expected $3"
		return 1
	fi
}

# dedupe ARGS...: runs cowfs dedupe --json, the report in $WORK/out.json, which must parse.
dedupe() {
	run "$COWFS" dedupe --json "$@"
	cp "$LIB_OUT" "$WORK/out.json"
	if ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/out.json" 2>/dev/null; then
		echo "    cowfs dedupe $*: exit $LIB_RC, output is not one JSON object"
		show_output
		return 1
	fi
	if grep -q $'\r' "$LIB_ERR"; then
		echo "    progress was drawn on a stderr that is not a terminal"
		return 1
	fi
}

# The free space once everything is committed (COWFS_IOC_SYNC first).
free_now() { py sync "$MNT" && py free "$MNT"; }

# ---- steps ----------------------------------------------------------------------------------

t_setup() {
	cowfs_mkfs "$IMG" 1G || return 1
	cowfs_mount "$IMG" "$MNT" || return 1
	py build "$TREE" >"$WORK/expect.json" || return 1
	# The figures below assume each file is one extent: check that first.
	local f n
	for f in $(py get "$WORK/expect.json" one_extent | tr -d '[],"'); do
		n=$(py extents "$TREE/$f") || return 1
		expect "extents of $f" "$n" 1 || return 1
	done
	py digest "$TREE" >"$WORK/digest.before"
}

t_dry_run() {
	local free0 free1 want
	free0=$(free_now)
	dedupe -r --dry-run "$TREE" || return 1
	expect "exit status" "$LIB_RC" 0 || return 1
	want=$(py get "$WORK/expect.json" deduped)
	expect "bytes_duplicate" "$(get bytes_duplicate)" "$want" || return 1
	expect "bytes_deduped" "$(get bytes_deduped)" 0 || return 1
	expect "ioctls" "$(get ioctls)" 0 || return 1
	expect "skipped_small" "$(get skipped_small)" 1 || return 1
	expect "files_scanned" "$(get files_scanned)" 9 || return 1
	[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["plan"]))' \
		"$WORK/out.json")" -gt 0 ] || { echo "    no dedupes listed"; return 1; }
	free1=$(free_now)
	expect "free space after a dry run" "$free1" "$free0" || return 1
	expect "bytes_freed" "$(get bytes_freed)" 0 || return 1
	py digest "$TREE" | cmp -s - "$WORK/digest.before" || { echo "    content changed"; return 1; }
	expect "shared after a dry run" "$(py any_shared "$TREE/sub/dupB")" no
}

# The records bounded by --memory: 4K chunks in 16K of memory take several passes, which must
# find exactly what one pass finds.
t_passes() {
	local one
	dedupe -r --dry-run --chunk 4K "$TREE" || return 1
	expect "passes" "$(get passes)" 1 || return 1
	one=$(get bytes_duplicate)
	dedupe -r --dry-run --chunk 4K --memory 16K "$TREE" || return 1
	expect "exit status" "$LIB_RC" 0 || return 1
	[ "$(get passes)" -gt 1 ] || { echo "    passes $(get passes), expected > 1"; return 1; }
	[ "$(get record_bytes_peak)" -le 16384 ] || { echo "    records over --memory"; return 1; }
	expect "bytes_duplicate over passes" "$(get bytes_duplicate)" "$one"
}

t_dedupe() {
	local free0 free1 want freed f
	free0=$(free_now)
	dedupe -r "$TREE" || return 1
	expect "exit status" "$LIB_RC" 0 || { show_output; return 1; }
	free1=$(free_now)
	want=$(py get "$WORK/expect.json" deduped)
	expect "bytes_duplicate" "$(get bytes_duplicate)" "$want" || return 1
	expect "bytes_deduped" "$(get bytes_deduped)" "$want" || return 1
	expect "bytes_differ" "$(get bytes_differ)" 0 || return 1
	expect "errors" "$(get errors)" 0 || return 1
	freed=0
	for f in $(py get "$WORK/expect.json" freed_files | tr -d '[],"'); do
		freed=$((freed + $(cat "$WORK/extent_bytes.$(echo "$f" | tr / _)")))
	done
	echo "    deduped $want, freed: expected $freed, reported $(get bytes_freed) (free space)," \
		"$(get data_bytes_freed) (file data); free space change $((free1 - free0))"
	expect "data_bytes_freed" "$(get data_bytes_freed)" "$freed" || return 1
	expect "bytes_freed vs the free-space change" "$(get bytes_freed)" "$((free1 - free0))" ||
		return 1
	expect "bytes_freed" "$(get bytes_freed)" "$freed"
}

# The lengths of the extents that dedupe must free, taken before it runs.
t_extent_sizes() {
	local f
	for f in $(py get "$WORK/expect.json" freed_files | tr -d '[],"'); do
		py extent_bytes "$TREE/$f" >"$WORK/extent_bytes.$(echo "$f" | tr / _)" || return 1
	done
}

t_after() {
	py digest "$TREE" | cmp -s - "$WORK/digest.before" || { echo "    content changed"; return 1; }
	expect "dupB shared" "$(py shared "$TREE/sub/dupB" 0 $((7 * CHUNK + 5000)))" yes || return 1
	expect "dupA shared" "$(py shared "$TREE/dupA" 0 $((7 * CHUNK + 5000)))" yes || return 1
	expect "part2 shared" "$(py shared "$TREE/part2" 0 $((4 * CHUNK)))" yes || return 1
	expect "part3's first chunks shared" "$(py shared "$TREE/sub/part3" 0 $((2 * CHUNK)))" yes ||
		return 1
	expect "part3's own chunks" "$(py shared "$TREE/sub/part3" $((2 * CHUNK)) $((4 * CHUNK)))" \
		no || return 1
	expect "shift2 shared" "$(py shared "$TREE/sub/shift2" $CHUNK $((4 * CHUNK)))" yes || return 1
	expect "uniq1 shared" "$(py any_shared "$TREE/uniq1")" no
}

t_again() {
	dedupe -r "$TREE" || return 1
	expect "exit status" "$LIB_RC" 0 || return 1
	expect "bytes_duplicate on a second run" "$(get bytes_duplicate)" 0 || return 1
	[ "$(get already_shared)" -gt 0 ] || { echo "    nothing seen as already shared"; return 1; }
	expect "data_bytes_freed on a second run" "$(get data_bytes_freed)" 0
}

# Identical pairs, each file several extents (appends with commits in between, extent
# boundaries not chunk-aligned): the copy kept is the same for every chunk of a pair, so the
# copies deduped lose every reference to their extents: file data freed equals the bytes
# deduped, exactly (rounded up to blocks for the two files ending in a partial block), and
# nothing is left pinned; the free space grows by at least that (metadata freed too).
t_pairs() {
	local want freed f n free0 free1
	py build_pairs "$MNT/pairs" >"$WORK/pairs.json" || return 1
	want=$(py get "$WORK/pairs.json" deduped)
	freed=$(py get "$WORK/pairs.json" freed)
	for f in "$MNT"/pairs/*; do
		n=$(py extents "$f") || return 1
		[ "$n" -ge 2 ] || { echo "    $f: $n extent, expected several"; return 1; }
	done
	free0=$(free_now)
	dedupe -r "$MNT/pairs" || return 1
	expect "exit status" "$LIB_RC" 0 || { show_output; return 1; }
	free1=$(free_now)
	echo "    deduped $(get bytes_deduped) of $want, file data freed $(get data_bytes_freed)" \
		"of $freed (the same in blocks), free space $(get bytes_freed)" \
		"(change $((free1 - free0)))"
	expect "bytes_deduped" "$(get bytes_deduped)" "$want" || return 1
	expect "pinned before" "$(get space_before.pinned)" 0 || return 1
	expect "data_bytes_freed" "$(get data_bytes_freed)" "$freed" || return 1
	expect "pinned after" "$(get space_after.pinned)" 0 || return 1
	expect "exclusive after" "$(get space_after.exclusive)" "$freed" || return 1
	expect "bytes_freed vs the free-space change" "$(get bytes_freed)" "$((free1 - free0))" ||
		return 1
	[ "$(get bytes_freed)" -ge "$freed" ] ||
		{ echo "    bytes_freed $(get bytes_freed) < the data freed $freed"; return 1; }
	n=$(py digest "$MNT/pairs" | awk '{print $1}' | sort | uniq -c | awk '$1 != 2' | wc -l)
	expect "pairs whose contents differ" "$n" 0
}

# copies SEED A B: two identical files of 2 MiB, committed.
copies() {
	mkdir -p "$(dirname "$2")"
	python3 -c 'import random,sys; d=random.Random(int(sys.argv[1])).randbytes(2<<20)
for p in sys.argv[2:]: open(p,"wb").write(d)' "$@" && py sync "$MNT"
}

# dedupe_paused FIFO A B: dedupes A and B in the background, waiting after hashing until a
# writer has opened FIFO and closed it; its pid in DD_PID.
dedupe_paused() {
	mkfifo "$1" || return 1
	COWFS_DEDUPE_TEST_PAUSE=$1 "$COWFS" dedupe --json "$2" "$3" >"$WORK/out.json" \
		2>"$WORK/chg.err" &
	DD_PID=$!
}

# differed A B WANT: the paused dedupe (DD_PID) found B changed since hashed: counted as
# differing, nothing shared, B holds its new content (sha256 WANT).
differed() {
	wait "$DD_PID"
	expect "exit status" "$?" 0 || { sed 's/^/    stderr: /' "$WORK/chg.err"; return 1; }
	expect "bytes_duplicate" "$(get bytes_duplicate)" $((2 << 20)) || return 1
	expect "bytes_differ" "$(get bytes_differ)" $((2 << 20)) || return 1
	expect "bytes_deduped" "$(get bytes_deduped)" 0 || return 1
	expect "the content of $2" "$(py sha "$2")" "$3" || return 1
	expect "$1 shared" "$(py any_shared "$1")" no
}

# A destination written after hashing and before the dedupe: the server finds it differs.
t_changed() {
	local want
	copies 7 "$MNT/chg/m1" "$MNT/chg/m2" || return 1
	dedupe_paused "$WORK/pause" "$MNT/chg/m1" "$MNT/chg/m2" || return 1
	# Opening the fifo waits until the tool has hashed both files and opened it.
	exec 7>"$WORK/pause"
	want=$(py modify "$MNT/chg/m2" $((3 * CHUNK)))
	exec 7>&-
	differed "$MNT/chg/m1" "$MNT/chg/m2" "$want"
}

# A destination dirtied through mmap after hashing, its page not yet written back: the tool
# writes the kernel's dirty pages back before the dedupe (as the VFS does), so the server
# compares the new bytes and finds them different, instead of sharing what it had before.
t_changed_mmap() {
	local want
	copies 9 "$MNT/chg/p1" "$MNT/chg/p2" || return 1
	dedupe_paused "$WORK/pause-mmap" "$MNT/chg/p1" "$MNT/chg/p2" || return 1
	want=$(py mmap_modify "$WORK/pause-mmap" "$DD_PID" "$MNT/chg/p2" $((5 * CHUNK)))
	differed "$MNT/chg/p1" "$MNT/chg/p2" "$want"
}

# A destination another process has open for writing: deduped, and a write through that
# descriptor afterwards changes that file alone.
t_open_writer() {
	local a b
	mkdir -p "$MNT/open"
	python3 -c 'import random,sys; d=random.Random(8).randbytes(1<<20)
for p in sys.argv[1:]: open(p,"wb").write(d)' "$MNT/open/w1" "$MNT/open/w2" || return 1
	a=$(py sha "$MNT/open/w1")
	exec 8<>"$MNT/open/w2"
	dedupe "$MNT/open/w1" "$MNT/open/w2"
	local rc=$?
	if [ $rc -eq 0 ]; then
		expect "exit status" "$LIB_RC" 0 && expect "bytes_deduped" "$(get bytes_deduped)" \
			$((1 << 20)) && expect "w2 shared" "$(py any_shared "$MNT/open/w2")" yes
		rc=$?
	fi
	[ $rc -eq 0 ] && { printf 'Z' >&8 || rc=1; }
	exec 8>&-
	[ $rc -eq 0 ] || return 1
	expect "w1 after writing w2" "$(py sha "$MNT/open/w1")" "$a" || return 1
	b=$(head -c 1 "$MNT/open/w2")
	expect "w2's first byte" "$b" Z
}

t_args() {
	run "$COWFS" dedupe "$TREE"
	expect "a directory without -r: exit" "$LIB_RC" 2 || return 1
	grep -q "use -r" "$LIB_ERR" || { echo "    no hint to use -r"; show_output; return 1; }
	run "$COWFS" dedupe -r "$WORK"
	expect "not a cowfs mount: exit" "$LIB_RC" 1 || return 1
	grep -q "not on a cowfs mount" "$LIB_ERR" || { show_output; return 1; }
	run "$COWFS" dedupe --chunk 6K "$TREE/dupA"
	expect "--chunk 6K: exit" "$LIB_RC" 2 || return 1
	run "$COWFS" dedupe --memory 1K "$TREE/dupA"
	expect "--memory 1K: exit" "$LIB_RC" 2 || return 1
	dedupe --dry-run "$TREE/dupA" "$PY" || return 1
	expect "a PATH on another mount: exit" "$LIB_RC" 0 || return 1
	expect "skipped_mount" "$(get skipped_mount)" 1 || return 1
	run "$COWFS" dedupe --help
	expect "--help: exit" "$LIB_RC" 0 || return 1
	grep -q "256 MiB per TiB" "$LIB_OUT" || { echo "    --help does not state the memory"; return 1; }
}

t_umount_fsck() {
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG"
}

if step setup t_setup; then
	step extent-sizes t_extent_sizes
	step dry-run t_dry_run
	step passes t_passes
	step dedupe t_dedupe
	step after t_after
	step again t_again
	step identical-pairs t_pairs
	step changed-meanwhile t_changed
	step changed-through-mmap t_changed_mmap
	step open-for-writing t_open_writer
	step arguments t_args
fi
step umount-fsck t_umount_fsck
lib_summary
