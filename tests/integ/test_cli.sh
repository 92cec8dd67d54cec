#!/usr/bin/env bash
# The cowfs commands on a mount's sharing ioctls (docs/CLI.md): reflink, fiemap, du, sync and
# stats on a real mount, their text and --json output (JSON parsed with python3), errors and
# exit statuses, and du's figures on a crafted tree against numbers worked out by hand:
#
#   t/a        1 MiB written in one go: one extent E1 (checked first with fiemap)
#   t/b        cowfs reflink t/a t/b: all of E1
#   t/c        cowfs reflink --src-offset 256K --length 256K t/a t/c: a quarter of E1
#   t/sub/e    64 KiB of its own: one extent E2
#   t/sub/eh   a hard link to t/sub/e (counted once, listed once)
#   t/sub/ln   a symlink (not followed, not listed)
#
# then t/a and t/b deleted: t/c alone keeps all of E1, three quarters of it pinned.
#
#   bash tests/integ/test_cli.sh
#
# Environment: BIN (build/bin), COWFS_TEST_DIR (scratch), COWFS_KEEP=1 (keep the scratch
# directory). Every step prints PASS/FAIL; exit status 1 if any failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

lib_require_programs test_cli
command -v python3 >/dev/null || { echo "test_cli: python3 is missing" >&2; exit 1; }

lib_init test_cli
IMG=$WORK/cli.img
MNT=$WORK/mnt
IMG2=$WORK/other.img
MNT2=$WORK/mnt2
PLAIN=$WORK/plain    # not on a cowfs mount
mkdir -p "$PLAIN"
KiB=1024
MiB=$((1024 * 1024))

# ---- expectations ------------------------------------------------------------------------

# JSON helpers of json_check (lib.sh): du's entry for a path, and its four figures.
LIB_JSON_HELPERS='
def entry(path):
    m = [p for p in d["paths"] if p["path"] == path]
    assert len(m) == 1, "%d entries for %s" % (len(m), path)
    return m[0]
def figures(x):
    return (x["referenced"], x["exclusive"], x["shared"], x["pinned"])
'

# cmp_range FILE OFFSET LENGTH OTHER [OTHER_OFFSET]: those bytes of FILE equal OTHER's
cmp_range() {
	cmp <(tail -c +$(($2 + 1)) "$1" | head -c "$3") \
		<(tail -c +$((${5:-0} + 1)) "$4" | head -c "$3") || {
		echo "    bytes $2..+$3 of $1 differ from $4 at ${5:-0}"
		return 1
	}
}

# write_random FILE BYTES: one write of BYTES random bytes, so that they make one extent
write_random() {
	head -c "$2" /dev/urandom >"$WORK/.random" && dd if="$WORK/.random" of="$1" bs="$2" \
		status=none
}

# ---- every command: help, usage errors, not a cowfs mount ---------------------------------

COMMANDS="reflink fiemap du sync stats"

t_help_and_usage() {
	local c
	for c in $COMMANDS; do
		run "$COWFS" "$c" --help
		expect_rc 0 && expect_out "Usage: cowfs $c" || return 1
		run "$COWFS" "$c" --no-such-option
		expect_rc 2 && expect_err "Usage: cowfs $c" || return 1
	done
	run "$COWFS" --help
	for c in $COMMANDS; do
		expect_out "  $c " || return 1
	done
	# Missing or extra operands.
	run "$COWFS" reflink "$MNT/x"
	expect_rc 2 || return 1
	run "$COWFS" fiemap
	expect_rc 2 || return 1
	run "$COWFS" du
	expect_rc 2 || return 1
	run "$COWFS" sync "$MNT" "$MNT"
	expect_rc 2 || return 1
	run "$COWFS" stats
	expect_rc 2 || return 1
	run "$COWFS" reflink --length 1Q "$MNT/x" "$MNT/y"
	expect_rc 2 && expect_err "invalid size '1Q'" || return 1
	[ ! -e "$MNT/y" ] || { echo "    a usage error created DST"; return 1; }
}

t_not_cowfs() {
	local c
	echo data >"$PLAIN/f"
	for c in fiemap du sync stats; do
		run "$COWFS" "$c" "$PLAIN/f"
		expect_rc 1 && expect_err "cowfs $c: $PLAIN/f: not on a cowfs mount" || return 1
		expect_no_out || return 1
		run "$COWFS" "$c" --json "$PLAIN/f"
		expect_rc 1 && expect_err "not on a cowfs mount" || return 1
	done
	run "$COWFS" du -s "$PLAIN"
	expect_rc 1 && expect_err "cowfs du: $PLAIN: not on a cowfs mount" && expect_no_out || return 1
	# /proc is not FUSE: refused on the magic, before any cowfs ioctl reaches it.
	run "$COWFS" stats /proc/self/status
	expect_rc 1 && expect_err "not on a cowfs mount" || return 1
	run "$COWFS" reflink "$PLAIN/f" "$MNT/from-plain"
	expect_rc 1 && expect_err "cowfs reflink: $PLAIN/f: not on a cowfs mount" || return 1
	[ ! -e "$MNT/from-plain" ] || { echo "    DST created though SRC was refused"; return 1; }
	run "$COWFS" sync "$PLAIN/none"
	expect_rc 1 && expect_err "No such file or directory" || return 1
}

# ---- reflink ---------------------------------------------------------------------------

t_reflink() {
	local r=$MNT/r
	mkdir -p "$r" && write_random "$r/a" $MiB || return 1
	run "$COWFS" reflink "$r/a" "$r/b"
	expect_rc 0 && expect_lines "$r/a -> $r/b: 1048576 bytes (1.00MiB) cloned" || return 1
	cmp "$r/a" "$r/b" || return 1
	[ "$(stat -c %a "$r/b")" = "$(stat -c %a "$r/a")" ] || { echo "    DST mode"; return 1; }
	# A range, as JSON.
	run "$COWFS" reflink --json --src-offset 256K --length 256K "$r/a" "$r/c"
	expect_rc 0 && json_check "d['src'] == '$r/a'" "d['dst'] == '$r/c'" \
		"d['bytes'] == 262144" "d['src_offset'] == 262144" "d['dst_offset'] == 0" ||
		return 1
	[ "$(stat -c %s "$r/c")" = 262144 ] || { echo "    size of c: $(stat -c %s "$r/c")"; return 1; }
	cmp_range "$r/c" 0 $((256 * KiB)) "$r/a" $((256 * KiB)) || return 1
	# Into an existing file at an offset: the rest stays, the file grows.
	write_random "$r/x" $((16 * KiB)) && cp "$r/x" "$WORK/x.before" || return 1
	run "$COWFS" reflink --src-offset 4K --dst-offset 12K --length 8K "$r/a" "$r/x"
	expect_rc 0 && expect_out "8192 bytes (8.00KiB) cloned" || return 1
	[ "$(stat -c %s "$r/x")" = $((20 * KiB)) ] || { echo "    x did not grow to 20K"; return 1; }
	cmp_range "$r/x" 0 $((12 * KiB)) "$WORK/x.before" && cmp_range "$r/x" $((12 * KiB)) \
		$((8 * KiB)) "$r/a" $((4 * KiB)) || return 1
	# The whole of SRC over a bigger DST: DST becomes SRC.
	write_random "$r/big" $((2 * MiB)) || return 1
	run "$COWFS" reflink "$r/a" "$r/big"
	expect_rc 0 && cmp "$r/a" "$r/big" || return 1
	# After a write to the source, the clone keeps the old bytes.
	cp "$r/a" "$WORK/a.before"
	printf 'overwritten' | dd of="$r/a" bs=1 seek=5000 conv=notrunc status=none
	cmp "$r/b" "$WORK/a.before" || { echo "    the clone changed with its source"; return 1; }
	"$COWFS" sync "$MNT" || return 1
}

t_reflink_errors() {
	local r=$MNT/r
	run "$COWFS" reflink --src-offset 100 "$r/a" "$r/unaligned"
	expect_rc 1 && expect_err "block size" || return 1
	[ ! -e "$r/unaligned" ] || { echo "    a failed clone left DST behind"; return 1; }
	run "$COWFS" reflink "$r/none" "$r/d1"
	expect_rc 1 && expect_err "cowfs reflink: $r/none: No such file or directory" || return 1
	[ ! -e "$r/d1" ] || return 1
	run "$COWFS" reflink "$r" "$r/d2"
	expect_rc 1 && expect_err "cowfs reflink: $r: Is a directory" || return 1
	run "$COWFS" reflink "$r/a" "$r"
	expect_rc 1 || return 1
	run "$COWFS" reflink "$r/a" "$PLAIN/dst"
	expect_rc 1 && expect_err "$PLAIN/dst: not on the same cowfs mount as $r/a" || return 1
	[ ! -e "$PLAIN/dst" ] || { echo "    DST left behind on the other filesystem"; return 1; }
	run "$COWFS" reflink "$r/a" "$MNT2/dst"
	expect_rc 1 && expect_err "$MNT2/dst: not on the same cowfs mount as $r/a" || return 1
	[ ! -e "$MNT2/dst" ] || { echo "    DST left behind on the other mount"; return 1; }
	# An existing DST keeps its bytes when the clone is refused.
	write_random "$r/keep" 8192 && cp "$r/keep" "$WORK/keep" || return 1
	run "$COWFS" reflink --src-offset 100 "$r/a" "$r/keep"
	expect_rc 1 && cmp "$r/keep" "$WORK/keep" || return 1
}

# ---- fiemap ----------------------------------------------------------------------------

t_fiemap() {
	local f=$MNT/f
	mkdir -p "$f" && write_random "$f/one" $MiB && "$COWFS" reflink "$f/one" "$f/two" >/dev/null &&
		write_random "$f/own" $((64 * KiB)) && "$COWFS" sync "$MNT" || return 1
	run "$COWFS" fiemap --json "$f/two"
	expect_rc 0 && json_check "d['file'] == '$f/two'" "d['count'] == len(d['extents']) >= 1" \
		"sum(e['length'] for e in d['extents']) == d['bytes'] == $MiB" \
		"d['shared_bytes'] == $MiB" "all('shared' in e['flags'] for e in d['extents'])" \
		"'last' in d['extents'][-1]['flags']" "d['extents'][0]['logical'] == 0" \
		"all(e['physical'] > 0 for e in d['extents'])" || return 1
	run "$COWFS" fiemap "$f/own"
	expect_rc 0 && expect_out "logical" && expect_out "$f/own: 1 extent, 64.00KiB, 0.00B shared" ||
		return 1
	grep -q shared <(sed 1d "$LIB_OUT" | sed '$d') && { echo "    own is not shared"; return 1; }
	# A hole is not listed; the second extent starts at 1 MiB.
	write_random "$f/sparse" 4096 && truncate -s $MiB "$f/sparse" &&
		head -c 4096 /dev/urandom >>"$f/sparse" || return 1
	run "$COWFS" fiemap --sync --json "$f/sparse"
	expect_rc 0 && json_check "[e['logical'] for e in d['extents']] == [0, $MiB]" \
		"not any('delalloc' in e['flags'] for e in d['extents'])" || return 1
	: >"$f/empty"
	run "$COWFS" fiemap --json "$f/empty"
	expect_rc 0 && json_check "d['extents'] == []" "d['count'] == 0" || return 1
	run "$COWFS" fiemap "$f"
	expect_rc 1 && expect_err "cowfs fiemap: $f: Is a directory" || return 1
}

# ---- du on the crafted tree --------------------------------------------------------------

make_tree() {
	local t=$MNT/t
	mkdir -p "$t/sub" && write_random "$t/a" $MiB &&
		"$COWFS" reflink "$t/a" "$t/b" >/dev/null &&
		"$COWFS" reflink --src-offset 256K --length 256K "$t/a" "$t/c" >/dev/null &&
		write_random "$t/sub/e" $((64 * KiB)) && ln "$t/sub/e" "$t/sub/eh" &&
		ln -s ../a "$t/sub/ln" && "$COWFS" sync "$MNT" || return 1
	# The figures below take t/a as one extent and t/sub/e as another.
	run "$COWFS" fiemap --json "$t/a"
	json_check "d['count'] == 1" || { echo "    t/a is not one extent"; return 1; }
	run "$COWFS" fiemap --json "$t/sub/e"
	json_check "d['count'] == 1" || { echo "    t/sub/e is not one extent"; return 1; }
}

# Referenced, exclusive, shared, pinned, by hand: E1 (1 MiB) is mapped whole by a and b and a
# quarter of it by c, all in t; E2 (64 KiB) by e alone (eh is the same inode).
t_du_tree() {
	local t=$MNT/t
	run "$COWFS" du --raw "$t"
	expect_rc 0 && expect_lines "$(printf '%10s  %10s  %10s  %10s  %s\n' \
		Total Exclusive Shared Pinned Filename \
		1048576 0 1048576 0 "$t/a" \
		1048576 0 1048576 0 "$t/b" \
		262144 0 262144 0 "$t/c" \
		65536 65536 0 0 "$t/sub/e" \
		65536 65536 0 0 "$t/sub" \
		2424832 1114112 0 0 "$t")" || return 1
	run "$COWFS" du "$t/sub"
	expect_rc 0 && expect_lines "$(printf '%10s  %10s  %10s  %10s  %s\n' \
		Total Exclusive Shared Pinned Filename \
		64.00KiB 64.00KiB 0.00B 0.00B "$t/sub/e" \
		64.00KiB 64.00KiB 0.00B 0.00B "$t/sub")" || return 1
	run "$COWFS" du --json "$t"
	expect_rc 0 && json_check "len(d['paths']) == 6" "'set' not in d" \
		"figures(entry('$t/a')) == ($MiB, 0, $MiB, 0)" \
		"figures(entry('$t/c')) == (262144, 0, 262144, 0)" \
		"figures(entry('$t/sub/e')) == (65536, 65536, 0, 0)" \
		"figures(entry('$t')) == (2424832, 1114112, 0, 0)" \
		"entry('$t')['type'] == 'dir'" "entry('$t/a')['type'] == 'file'" \
		"entry('$t/a')['extents'] == 1" "entry('$t')['extents'] == 2" || return 1
	# -s: one line per PATH; a directory's figures come from the server's own walk.
	run "$COWFS" du -s "$t"
	expect_rc 0 && expect_lines "$(printf '%10s  %10s  %10s  %10s  %s\n' \
		Total Exclusive Shared Pinned Filename 2.31MiB 1.06MiB 0.00B 0.00B "$t")" ||
		return 1
	run "$COWFS" du -s --human --json "$t/sub/eh"
	expect_rc 0 && json_check "figures(d['paths'][0]) == (65536, 65536, 0, 0)" || return 1
}

# Sets: b and c free nothing together (a still maps E1); a, b and c free E1; e and its hard
# link are one inode, counted once.
t_du_sets() {
	local t=$MNT/t
	run "$COWFS" du -s --json "$t/b" "$t/c"
	expect_rc 0 && json_check "d['set']['paths'] == 2" \
		"figures(d['set']) == (1310720, 0, 1310720, 0)" \
		"d['set']['freed_if_all_deleted'] == 0" \
		"[p['path'] for p in d['paths']] == ['$t/b', '$t/c']" || return 1
	run "$COWFS" du -s --json "$t/a" "$t/b" "$t/c"
	expect_rc 0 && json_check "figures(d['set']) == (2359296, $MiB, 0, 0)" \
		"d['set']['freed_if_all_deleted'] == $MiB" \
		"figures(entry('$t/a')) == ($MiB, 0, $MiB, 0)" || return 1
	run "$COWFS" du -s "$t/a" "$t/b" "$t/c"
	expect_rc 0 && expect_lines "$(printf '%10s  %10s  %10s  %10s  %s\n' \
		Total Exclusive Shared Pinned Filename \
		1.00MiB 0.00B 1.00MiB 0.00B "$t/a" \
		1.00MiB 0.00B 1.00MiB 0.00B "$t/b" \
		256.00KiB 0.00B 256.00KiB 0.00B "$t/c" \
		2.25MiB 1.00MiB 0.00B 0.00B "(all 3 paths together)")
Freed if all deleted: 1.00MiB" || return 1
	run "$COWFS" du -s --json "$t/sub/e" "$t/sub/eh"
	expect_rc 0 && json_check "figures(d['set']) == (65536, 65536, 0, 0)" || return 1
	# Not all on one mount: the set has no answer.
	run "$COWFS" du -s "$t/a" "$MNT2"
	expect_rc 1 && expect_err "$MNT2: not on the same cowfs mount" &&
		expect_out "$t/a" || return 1
	grep -q "Freed if all deleted" "$LIB_OUT" && { echo "    a set line across mounts"; return 1; }
	# A PATH that fails: its error, the others' lines, no set line, exit 1.
	run "$COWFS" du -s --json "$t/a" "$t/none"
	expect_rc 1 && expect_err "cowfs du: $t/none: No such file or directory" &&
		json_check "len(d['paths']) == 1" "'set' not in d" || return 1
}

# Once a and b are gone, c alone keeps all of E1: exclusive 1 MiB, three quarters pinned.
t_du_pinned() {
	local t=$MNT/t
	rm "$t/a" "$t/b" && "$COWFS" sync "$MNT" || return 1
	run "$COWFS" du -s --json "$t/c"
	expect_rc 0 && json_check "figures(d['paths'][0]) == (262144, $MiB, 0, 786432)" || return 1
	run "$COWFS" du -s "$t/c"
	expect_rc 0 && expect_out "$(printf '%10s  %10s  %10s  %10s  %s' 256.00KiB 1.00MiB 0.00B \
		768.00KiB "$t/c")" || return 1
	run "$COWFS" fiemap --json "$t/c"
	json_check "not any('shared' in e['flags'] for e in d['extents'])" || return 1
}

# ---- sync and stats --------------------------------------------------------------------

t_sync() {
	local g1 g2
	run "$COWFS" sync --json "$MNT"
	expect_rc 0 && json_check "d['path'] == '$MNT'" "d['generation'] > 0" || return 1
	g1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"])' "$LIB_OUT")
	echo change >"$MNT/sync-file"
	run "$COWFS" sync "$MNT/sync-file"
	expect_rc 0 && expect_no_out || return 1
	run "$COWFS" sync --json "$MNT"
	g2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"])' "$LIB_OUT")
	[ "$g2" -gt "$g1" ] || { echo "    generation $g1 -> $g2 across a change and a sync"; return 1; }
	# The default PATH is the current directory.
	local cowfs
	cowfs=$(abspath "$COWFS")
	(cd "$MNT" && "$cowfs" sync) || return 1
}

# The verdict line, from the counters (sizes as btrfs prints them).
verdict_of() {
	python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def size(b):
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    v, last, n = b, b, 0
    while v >= 1024:
        last, v, n = v, v // 1024, n + 1
    return "%.2f%s" % (last / (1024.0 if n else 1.0), units[n])
print("copy_file_range: %s shared, %s copied; clone: %s; dedupe: %s shared" % (
    size(d["copy_bytes_shared"]), size(d["copy_bytes_copied"]), size(d["clone_bytes"]),
    size(d["dedupe_bytes_same"])))
PY
}

STATS_FIELDS="copy_calls copy_bytes_shared copy_bytes_copied clone_calls clone_bytes dedupe_calls
dedupe_bytes_same dedupe_bytes_differ commits fsyncs fsync_log_hits fsync_commits"

# On a fresh mount: nothing yet; then one reflink and one cp, counted.
t_stats() {
	local f before
	run "$COWFS" stats --json "$MNT2"
	expect_rc 0 || return 1
	for f in $STATS_FIELDS path verdict; do
		json_check "'$f' in d" || return 1
	done
	json_check "d['clone_calls'] == d['clone_bytes'] == d['copy_calls'] == 0" \
		"d['verdict'] == 'copy_file_range: 0.00B shared, 0.00B copied; clone: 0.00B; dedupe: 0.00B shared'" ||
		return 1
	write_random "$MNT2/src" $MiB && "$COWFS" reflink "$MNT2/src" "$MNT2/clone" >/dev/null &&
		cp "$MNT2/src" "$MNT2/copy" && cmp "$MNT2/src" "$MNT2/copy" || return 1
	run "$COWFS" stats --json "$MNT2"
	expect_rc 0 && json_check "d['clone_calls'] == 1" "d['clone_bytes'] == $MiB" \
		"d['copy_calls'] >= 1" "d['copy_bytes_shared'] + d['copy_bytes_copied'] == $MiB" ||
		return 1
	cp "$LIB_OUT" "$WORK/stats.json"
	json_check "d['verdict'] == '$(verdict_of "$WORK/stats.json")'" || return 1
	run "$COWFS" stats "$MNT2"
	expect_rc 0 || return 1
	[ "$(head -1 "$LIB_OUT")" = "$(verdict_of "$WORK/stats.json")" ] ||
		{ echo "    first line: $(head -1 "$LIB_OUT")"; return 1; }
	for f in $STATS_FIELDS; do
		grep -q "^$f  *[0-9][0-9]*$" "$LIB_OUT" || { echo "    no counter $f"; show_output; return 1; }
	done
	expect_out "clone: 1.00MiB" || return 1
}

# ---- cowfs dump of a mounted image ------------------------------------------------------

# The note a dump of a mounted image prints on stderr; its generation on stdout.
DUMP_NOTE="is mounted (pid "

# dump_generation: the generation the last run's note names.
dump_generation() {
	sed -n 's/.*showing the last committed generation \([0-9]*\);.*/\1/p' "$LIB_ERR"
}

# A file written and synced shows, with its extents, while the image is mounted; so does the
# superblock, of the generation the note names (at least that of the sync).
t_dump_mounted() {
	local g
	write_random "$MNT2/dumped" $((3 * 4096 + 7)) || return 1
	run "$COWFS" sync --json "$MNT2"
	expect_rc 0 || return 1
	g=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"])' "$LIB_OUT")
	run "$COWFS" dump --json --path /dumped "$IMG2"
	expect_rc 0 && expect_err "$DUMP_NOTE" && expect_err "newer changes are not shown" ||
		return 1
	json_check "d['problems'] == 0" "d['file']['size'] == 3 * 4096 + 7" \
		"sum(e['num_bytes'] for e in d['file']['extents']) == 4 * 4096" \
		"all(e['type'] == 'regular' and e['extent_refs'] == 1 for e in d['file']['extents'])" \
		"all(e['generation'] <= $(dump_generation) for e in d['file']['extents'])" || return 1
	[ "$(dump_generation)" -ge "$g" ] ||
		{ echo "    the note names generation $(dump_generation), the sync said $g"; return 1; }
	run "$COWFS" dump --path /dumped "$IMG2"
	expect_rc 0 && expect_out "disk_bytenr" && expect_out "extent_refs       1" || return 1
	run "$COWFS" dump --super --json "$IMG2"
	expect_rc 0 && expect_err "$DUMP_NOTE" || return 1
	json_check "d['superblock']['generation'] == $(dump_generation)" \
		"d['superblock']['generation'] >= $g" "d['problems'] == 0" || return 1
}

# What one dump under a committing writer printed: a sound document of a generation the
# writer made (a file of k*4096+7 bytes, its extents covering it), or nothing and the error
# that says to run again. $1: the kind (path or all), $2: its exit status.
DUMP_CHECK='
import json, sys
kind, rc, out, err = sys.argv[1], int(sys.argv[2]), sys.argv[3], open(sys.argv[4]).read()
if rc == 1:
    assert "image changed while reading; run again" in err, err
    assert open(out).read() == "", "output printed before the retry error"
    sys.exit(0)
assert rc == 0, "exit %d: %s" % (rc, err)
assert "is mounted (pid " in err, err
d = json.load(open(out))
assert d["problems"] == 0, d["problems"]
if kind == "path":
    f = d["file"]
    assert (f["size"] - 7) % 4096 == 0 and f["size"] > 7, f["size"]
    assert sum(e["num_bytes"] for e in f["extents"]) == f["size"] - 7 + 4096, f
    assert all(e["extent_refs"] == 1 for e in f["extents"]), f
else:
    assert [t["id"] for t in d["trees"]][:3] == [1, 2, 5], d["trees"]
'

# While a writer keeps committing, dumps of the file and of the whole image never print wrong
# data: each exits 0 with a consistent document, or with the clear error to run again.
t_dump_while_committing() {
	local writer n=0 bad=0 kind rc
	write_random "$MNT2/churn.tmp" $((4096 + 7)) && mv "$MNT2/churn.tmp" "$MNT2/churn" &&
		"$COWFS" sync "$MNT2" || return 1
	(
		for k in $(seq 2 150); do
			write_random "$MNT2/churn.tmp" $((k * 4096 + 7)) &&
				mv "$MNT2/churn.tmp" "$MNT2/churn" && mkdir "$MNT2/churn-dir.$k" &&
				"$COWFS" sync "$MNT2" || exit 1
		done
	) &
	writer=$!
	while kill -0 "$writer" 2>/dev/null || [ "$n" -lt 4 ]; do
		for kind in path all; do
			rc=0
			if [ "$kind" = path ]; then
				"$COWFS" dump --json --path /churn "$IMG2" >"$WORK/dump.out" \
					2>"$WORK/dump.err" || rc=$?
			else
				"$COWFS" dump --json "$IMG2" >"$WORK/dump.out" 2>"$WORK/dump.err" || rc=$?
			fi
			n=$((n + 1))
			python3 -c "$DUMP_CHECK" "$kind" "$rc" "$WORK/dump.out" "$WORK/dump.err" ||
				{ bad=$((bad + 1)); echo "    dump $n ($kind) was wrong"; }
		done
	done
	wait "$writer" || { echo "    the writer failed"; return 1; }
	echo "    $n dumps while committing, $bad wrong"
	[ "$bad" -eq 0 ]
}

# A path that is not there: said so, exit 2, and no problem counted against the image.
t_dump_missing_path() {
	run "$COWFS" dump --path /missing "$IMG2"
	expect_rc 2 && expect_err "no such file: /missing" || return 1
	! grep -q "problem" "$LIB_ERR" || { echo "    a problem reported:"; show_output; return 1; }
}

# ---- the run ---------------------------------------------------------------------------

step "mkfs.cowfs (two images)" eval 'cowfs_mkfs "$IMG" 512M && cowfs_mkfs "$IMG2" 128M' ||
	{ lib_summary; exit 1; }
if step "mount both" eval 'cowfs_mount "$IMG" "$MNT" && cowfs_mount "$IMG2" "$MNT2"'; then
	step "--help, usage errors: exit 0 and 2" t_help_and_usage
	step "a path not on a cowfs mount: 'not on a cowfs mount', exit 1" t_not_cowfs
	step "stats: counters, one reflink and one cp counted, the verdict" t_stats
	step "reflink: whole, range, at an offset, over a bigger file; then cmp" t_reflink
	step "reflink errors: unaligned, missing, directory, other mounts; no DST left" \
		t_reflink_errors
	step "fiemap: shared, last, holes, --sync, empty file, directory" t_fiemap
	if step "du: the crafted tree (file, reflink, partial reflink, hard link)" make_tree; then
		step "du: a line per file and directory, figures by hand" t_du_tree
		step "du: sets of paths, freed if all deleted" t_du_sets
		step "du: a partial reference pins the whole extent" t_du_pinned
	fi
	step "sync: the generation moves, default path" t_sync
	step "dump of a mounted image: the file's extents, the superblock, the note" t_dump_mounted
	step "dump under a committing writer: never wrong, or 'run again'" t_dump_while_committing
	step "dump --path /missing: 'no such file', exit 2, no problem" t_dump_missing_path
	step "unmount" eval 'cowfs_umount "$MNT" "$IMG" && cowfs_umount "$MNT2" "$IMG2"'
	step "fsck.cowfs: both clean" eval 'run_fsck "$IMG" && run_fsck "$IMG2"'
fi
lib_summary
