#!/usr/bin/env bash
# The subvolume commands (docs/CLI.md): cowfs subvolume create/snapshot/delete/list/show/
# set-default/get-default/sync/space, cowfs snapshot and cowfs property: help and usage errors
# (exit 0 and 2), a path not on a cowfs mount ("not on a cowfs mount", exit 1, nothing on
# stdout), and on a cowfs mount:
#
#   - a server without subvolumes (COWFS_IOC_SUBVOL_* unknown: ENOTTY): every command says
#     "does not support subvolumes", exit 1, prints nothing and changes nothing;
#   - a server with them: create, snapshot (rw, -r), the ro property and EROFS, list with its
#     filters and JSON, show, space of a set, set-default/get-default, delete and sync.
#
# Which of the two the mount is, is asked first (subvolume show on its root); the other
# half is reported as skipped.
#
#   bash tests/integ/test_subvol_cli.sh
#
# Environment: BIN (build/bin), COWFS_TEST_DIR (scratch), COWFS_KEEP=1 (keep the scratch
# directory). Every step prints PASS/FAIL; exit status 1 if any failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

lib_require_programs test_subvol_cli
command -v python3 >/dev/null || { echo "test_subvol_cli: python3 is missing" >&2; exit 1; }

lib_init test_subvol_cli
IMG=$WORK/sv.img
MNT=$WORK/mnt
PLAIN=$WORK/plain    # not on a cowfs mount
mkdir -p "$PLAIN/d"
MiB=$((1024 * 1024))

SUBCOMMANDS="create snapshot delete list show set-default get-default sync space"

# ---- expectations ------------------------------------------------------------------------

# JSON helpers of json_check (lib.sh): the subvolume of a list with that path.
LIB_JSON_HELPERS='
def sv(path):
    m = [s for s in d["subvolumes"] if s["path"] == path]
    assert len(m) == 1, "%d subvolumes with path %r" % (len(m), path)
    return m[0]
'

# ---- help and usage: no mount needed ------------------------------------------------------

t_help_and_usage() {
	local s
	run "$COWFS" --help
	for s in subvolume snapshot property; do
		expect_out "  $s " || return 1
	done
	run "$COWFS" subvolume --help
	expect_rc 0 && expect_out "Usage: cowfs subvolume SUBCOMMAND" || return 1
	for s in $SUBCOMMANDS; do
		expect_out "cowfs subvolume $s" || return 1
	done
	for s in $SUBCOMMANDS; do
		# (snapshot's usage names `cowfs snapshot` first, `cowfs subvolume snapshot` second)
		run "$COWFS" subvolume "$s" --help
		expect_rc 0 && expect_out "Usage: " && expect_out "cowfs subvolume $s" || return 1
		run "$COWFS" subvolume "$s" --no-such-option
		expect_rc 2 && expect_err "cowfs subvolume $s: unrecognized option '--no-such-option'" &&
			expect_err "Usage: " || return 1
		run "$COWFS" subvolume "$s"
		expect_rc 2 && expect_err "Usage: " && expect_err "cowfs subvolume $s" &&
			expect_no_out || return 1
	done
	run "$COWFS" snapshot --help
	expect_rc 0 && expect_out "Usage: cowfs snapshot [-r|--readonly] SRC DST[/NAME]" || return 1
	run "$COWFS" property --help
	expect_rc 0 && expect_out "cowfs property set PATH ro true|false" || return 1
	# No subcommand, an unknown one, an ambiguous prefix; a unique prefix works.
	run "$COWFS" subvolume
	expect_rc 2 && expect_err "no subcommand given" || return 1
	run "$COWFS" subvolume frobnicate
	expect_rc 2 && expect_err "cowfs subvolume: unknown subcommand 'frobnicate'" || return 1
	run "$COWFS" subvolume s "$PLAIN"
	expect_rc 2 && expect_err "ambiguous subcommand 's'" || return 1
	run "$COWFS" subvolume del --help
	expect_rc 0 && expect_out "Usage: cowfs subvolume delete" || return 1
	# Operand counts and values.
	run "$COWFS" snapshot "$PLAIN"
	expect_rc 2 || return 1
	run "$COWFS" snapshot -r "$PLAIN" "$PLAIN/a" "$PLAIN/b"
	expect_rc 2 || return 1
	run "$COWFS" subvolume show "$PLAIN" "$PLAIN"
	expect_rc 2 || return 1
	run "$COWFS" subvolume list -s -r -d --raw --json "$PLAIN" "$PLAIN"
	expect_rc 2 || return 1
	run "$COWFS" subvolume sync "$PLAIN" 256 abc
	expect_rc 2 && expect_err "'abc' is not a subvolume id" && expect_no_out || return 1
	run "$COWFS" subvolume sync "$PLAIN" 0
	expect_rc 2 && expect_err "'0' is not a subvolume id" || return 1
	run "$COWFS" property set "$PLAIN" ro yes
	expect_rc 2 && expect_err "ro is true or false, not 'yes'" || return 1
	run "$COWFS" property set "$PLAIN" compression zstd
	expect_rc 2 && expect_err "unknown property 'compression'" || return 1
	run "$COWFS" property get "$PLAIN" label
	expect_rc 2 && expect_err "unknown property 'label'" || return 1
	run "$COWFS" property
	expect_rc 2 || return 1
	run "$COWFS" snapshot --version
	expect_rc 0 && expect_out "cowfs (cowfs)" || return 1
}

# ---- not on a cowfs mount -----------------------------------------------------------------

# expect_refused WHAT: the last run failed with exit 1, WHAT on stderr, nothing on stdout
expect_refused() {
	expect_rc 1 && expect_err "$1" && expect_no_out
}

t_not_cowfs() {
	local p=$PLAIN
	run "$COWFS" subvolume create "$p/new"
	expect_refused "cowfs subvolume create: $p: not on a cowfs mount" || return 1
	[ ! -e "$p/new" ] || { echo "    create made something on a plain directory"; return 1; }
	run "$COWFS" snapshot "$p/d" "$p/snap"
	expect_refused "cowfs snapshot: $p/d: not on a cowfs mount" || return 1
	run "$COWFS" subvolume snapshot -r "$p/d" "$p/snap"
	expect_refused "cowfs subvolume snapshot: $p/d: not on a cowfs mount" || return 1
	run "$COWFS" subvolume delete "$p/d"
	expect_refused "cowfs subvolume delete: $p: not on a cowfs mount" || return 1
	[ -d "$p/d" ] || { echo "    delete removed a plain directory"; return 1; }
	run "$COWFS" subvolume list "$p"
	expect_refused "cowfs subvolume list: $p: not on a cowfs mount" || return 1
	run "$COWFS" subvolume list --json "$p"
	expect_refused "not on a cowfs mount" || return 1
	run "$COWFS" subvolume show --json "$p/d"
	expect_refused "cowfs subvolume show: $p/d: not on a cowfs mount" || return 1
	run "$COWFS" subvolume set-default 256 "$p"
	expect_refused "cowfs subvolume set-default: $p: not on a cowfs mount" || return 1
	run "$COWFS" subvolume get-default "$p"
	expect_refused "cowfs subvolume get-default: $p: not on a cowfs mount" || return 1
	run "$COWFS" subvolume sync "$p"
	expect_refused "cowfs subvolume sync: $p: not on a cowfs mount" || return 1
	run "$COWFS" subvolume space "$p" "$p/d"
	expect_refused "cowfs subvolume space: $p: not on a cowfs mount" || return 1
	run "$COWFS" property get "$p/d"
	expect_refused "cowfs property get: $p/d: not on a cowfs mount" || return 1
	run "$COWFS" property set "$p/d" ro true
	expect_refused "cowfs property set: $p/d: not on a cowfs mount" || return 1
	# /proc is not FUSE: refused on the magic, before any cowfs ioctl reaches it.
	run "$COWFS" subvolume show /proc/self/status
	expect_refused "not on a cowfs mount" || return 1
	run "$COWFS" subvolume show "$p/missing"
	expect_refused "$p/missing: No such file or directory" || return 1
}

# ---- a cowfs mount without subvolumes ------------------------------------------------------

t_no_support() {
	local m=$MNT msg="this cowfs mount does not support subvolumes" before after
	mkdir -p "$m/d" && echo data >"$m/d/f" || return 1
	before=$(ls -a "$m" "$m/d" | md5sum)
	run "$COWFS" subvolume create "$m/new"
	expect_refused "cowfs subvolume create: $m: $msg" || return 1
	run "$COWFS" snapshot "$m" "$m/snap"
	expect_refused "cowfs snapshot: $m: $msg" || return 1
	run "$COWFS" subvolume snapshot -r "$m" "$m/d"
	expect_refused "cowfs subvolume snapshot: $m: $msg" || return 1
	run "$COWFS" subvolume delete "$m/d"
	expect_refused "cowfs subvolume delete: $m: $msg" || return 1
	# The mount's root: its directory is on another filesystem.
	run "$COWFS" subvolume delete "$m"
	expect_refused "cowfs subvolume delete: $m: $msg" || return 1
	run "$COWFS" subvolume list "$m"
	expect_refused "cowfs subvolume list: $m: $msg" || return 1
	run "$COWFS" subvolume list --json "$m"
	expect_refused "$msg" || return 1
	run "$COWFS" subvolume show "$m/d/f"
	expect_refused "cowfs subvolume show: $m/d/f: $msg" || return 1
	run "$COWFS" subvolume set-default 5 "$m"
	expect_refused "cowfs subvolume set-default: $m: $msg" || return 1
	run "$COWFS" subvolume set-default "$m"
	expect_refused "cowfs subvolume set-default: $m: $msg" || return 1
	run "$COWFS" subvolume get-default --json "$m"
	expect_refused "cowfs subvolume get-default: $m: $msg" || return 1
	run "$COWFS" subvolume sync "$m" 256
	expect_refused "cowfs subvolume sync: $m: $msg" || return 1
	run "$COWFS" subvolume space --json "$m" "$m/d"
	expect_refused "cowfs subvolume space: $m: $msg" || return 1
	run "$COWFS" property get "$m"
	expect_refused "cowfs property get: $m: $msg" || return 1
	run "$COWFS" property set "$m" ro true
	expect_refused "cowfs property set: $m: $msg" || return 1
	after=$(ls -a "$m" "$m/d" | md5sum)
	[ "$before" = "$after" ] || { echo "    the mount changed"; return 1; }
	# The mount still works after all of them.
	echo more >>"$m/d/f" && [ "$(cat "$m/d/f")" = "$(printf 'data\nmore')" ]
}

# ---- a cowfs mount with subvolumes ---------------------------------------------------------

t_create_and_snapshot() {
	local m=$MNT
	run "$COWFS" subvolume create "$m/a" "$m/b/"
	expect_rc 0 && expect_out "Create subvolume '$m/a'" && expect_out "Create subvolume '$m/b/'" ||
		return 1
	[ -d "$m/a" ] && [ -d "$m/b" ] || { echo "    no directories a, b"; return 1; }
	head -c $MiB /dev/urandom >"$m/a/data" || return 1
	run "$COWFS" subvolume create "$m/a"
	expect_rc 1 && expect_err "cowfs subvolume create: $m/a: File exists" || return 1
	# Writable, into an existing directory (its name from SRC), then read-only by name.
	mkdir -p "$m/snaps" || return 1
	run "$COWFS" snapshot "$m/a" "$m/snaps"
	expect_rc 0 && expect_out "Create a snapshot of '$m/a' in '$m/snaps/a'" || return 1
	run "$COWFS" subvolume snapshot -r "$m/a" "$m/snaps/a-ro"
	expect_rc 0 && expect_out "Create a readonly snapshot of '$m/a' in '$m/snaps/a-ro'" ||
		return 1
	cmp "$m/a/data" "$m/snaps/a/data" && cmp "$m/a/data" "$m/snaps/a-ro/data" || return 1
	# A directory inside a subvolume is not one.
	mkdir -p "$m/a/inner" || return 1
	run "$COWFS" snapshot "$m/a/inner" "$m/snaps/inner"
	expect_refused "cowfs snapshot: $m/a/inner: not a subvolume" || return 1
	# The top level (the mount's root) is a subvolume too.
	run "$COWFS" snapshot -r "$m" "$m/snaps/top"
	expect_rc 0 && expect_out "Create a readonly snapshot of '$m' in '$m/snaps/top'" &&
		[ -d "$m/snaps/top/snaps" ]
}

t_property() {
	local m=$MNT
	run "$COWFS" property get "$m/snaps/a-ro"
	expect_rc 0 && [ "$(cat "$LIB_OUT")" = "ro=true" ] || { show_output; return 1; }
	run "$COWFS" property get "$m/snaps/a" ro
	expect_rc 0 && [ "$(cat "$LIB_OUT")" = "ro=false" ] || { show_output; return 1; }
	# (the braces: the redirection's own error is what goes to .werr)
	if { echo x >"$m/snaps/a-ro/new"; } 2>"$WORK/.werr"; then
		echo "    a write into a read-only snapshot succeeded"
		return 1
	fi
	grep -q "Read-only file system" "$WORK/.werr" || { cat "$WORK/.werr"; return 1; }
	run "$COWFS" property set "$m/snaps/a-ro" ro false
	expect_rc 0 || return 1
	echo x >"$m/snaps/a-ro/new" || return 1
	run "$COWFS" property set "$m/snaps/a-ro" ro true
	expect_rc 0 || return 1
	run "$COWFS" property get "$m/a/inner"
	expect_refused "not a subvolume" || return 1
	run "$COWFS" property list "$m/a"
	expect_rc 0 && expect_out "ro" || return 1
}

t_list() {
	local m=$MNT
	run "$COWFS" subvolume list "$m"
	expect_rc 0 && expect_out "ID" && expect_out "Exclusive" && expect_out "<top level>" &&
		expect_out "snaps/a-ro" || return 1
	run "$COWFS" subvolume list --json "$m"
	expect_rc 0 && json_check \
		"d['path'] == '$m'" \
		"[s['id'] for s in d['subvolumes']] == sorted(s['id'] for s in d['subvolumes'])" \
		"d['subvolumes'][0]['id'] == 5 and d['subvolumes'][0]['path'] == ''" \
		"sv('a')['source'] == 0 and sv('a')['parent'] == 5" \
		"sv('snaps/a')['source'] == sv('a')['id']" \
		"sv('snaps/a-ro')['read_only'] and sv('snaps/a-ro')['flags'] == ['ro']" \
		"sv('snaps/a-ro')['source_uuid'] == sv('a')['uuid']" \
		"all(s['id'] >= 256 for s in d['subvolumes'][1:])" \
		"all(isinstance(s['exclusive'], int) for s in d['subvolumes'])" \
		"sv('a')['exclusive'] < $MiB" || return 1
	run "$COWFS" subvolume list -s --json "$m"
	expect_rc 0 && json_check "all(s['source'] for s in d['subvolumes'])" \
		"len(d['subvolumes']) == 3" || return 1
	run "$COWFS" subvolume list -r --json "$m"
	expect_rc 0 && json_check "all(s['read_only'] for s in d['subvolumes'])" \
		"sorted(s['path'] for s in d['subvolumes']) == ['snaps/a-ro', 'snaps/top']" || return 1
	run "$COWFS" subvolume list -d "$m"
	expect_rc 0 && expect_no_out || return 1
}

t_show_and_space() {
	local m=$MNT
	run "$COWFS" subvolume show "$m/snaps/a-ro"
	expect_rc 0 && expect_out "snaps/a-ro" && expect_out "Name:                 a-ro" &&
		expect_out "Source ID:" && expect_out "(a)" && expect_out "Flags:                ro" ||
		return 1
	run "$COWFS" subvolume show --json "$m/a/inner"
	expect_rc 0 && json_check "d['path'] == 'a'" "d['source_path'] is None" \
		"sorted(s['path'] for s in d['snapshots']) == ['snaps/a', 'snaps/a-ro']" || return 1
	# a and its two snapshots share every data byte: alone each frees little, together the
	# megabyte of data.
	run "$COWFS" subvolume space --json "$m/a" "$m/snaps/a" "$m/snaps/a-ro" "$m/a/inner"
	expect_rc 0 && json_check "len(d['subvolumes']) == 3" \
		"d['exclusive_data'] >= $MiB" "d['referenced'] is None" \
		"d['freed_if_all_deleted'] == d['exclusive']" || return 1
	run "$COWFS" subvolume space --referenced "$m/a"
	expect_rc 0 && expect_out "Referenced:" && expect_out "Freed if deleted:" || return 1
}

t_default() {
	local m=$MNT
	run "$COWFS" subvolume get-default "$m"
	expect_rc 0 && expect_out "ID 5 " || return 1
	run "$COWFS" subvolume set-default "$m/snaps/a"
	expect_rc 0 || return 1
	run "$COWFS" subvolume get-default --json "$m"
	expect_rc 0 && json_check "d['path'] == 'snaps/a'" "d['default']" || return 1
	run "$COWFS" subvolume delete "$m/snaps/a"
	expect_refused "is the mount's root or the default subvolume" || return 1
	run "$COWFS" subvolume set-default 5 "$m"
	expect_rc 0 || return 1
	run "$COWFS" subvolume delete "$m"
	expect_refused "cowfs subvolume delete: $m: Device or resource busy: is the mount's root" ||
		return 1
}

t_delete_and_sync() {
	local m=$MNT id
	id=$("$COWFS" subvolume list --json "$m" | python3 -c \
		'import json,sys; print([s["id"] for s in json.load(sys.stdin)["subvolumes"] if s["path"] == "snaps/a"][0])')
	run "$COWFS" subvolume delete "$m/snaps/a" "$m/snaps/top"
	expect_rc 0 && expect_out "Delete subvolume (no-commit): '$(realpath "$m")/snaps/a'" ||
		return 1
	[ ! -e "$m/snaps/a" ] || { echo "    snaps/a still there"; return 1; }
	run "$COWFS" subvolume sync "$m"
	expect_rc 0 && expect_out "Dropped and committed:" || return 1
	run "$COWFS" subvolume sync "$m" "$id"
	expect_rc 0 && expect_out "Subvolume $id is gone" || return 1
	run "$COWFS" subvolume sync "$m" 5
	expect_refused "not being deleted" || return 1
	run "$COWFS" subvolume delete "$m/a/inner"
	expect_refused "not a subvolume" || return 1
	run "$COWFS" subvolume delete -c "$m/b"
	expect_rc 0 && expect_out "Delete subvolume (commit):" || return 1
	run "$COWFS" subvolume list --json "$m"
	expect_rc 0 && json_check "not [s for s in d['subvolumes'] if s['path'] in ('b', 'snaps/a')]" ||
		return 1
}

# ---- the run ----------------------------------------------------------------------------

step "--help, usage errors: exit 0 and 2" t_help_and_usage
step "a path not on a cowfs mount: 'not on a cowfs mount', exit 1" t_not_cowfs
step "mkfs.cowfs" cowfs_mkfs "$IMG" 256M || { lib_summary; exit 1; }
if step "mount" cowfs_mount "$IMG" "$MNT"; then
	run "$COWFS" subvolume show "$MNT"
	if grep -qF "does not support subvolumes" "$LIB_ERR"; then
		step "a mount without subvolumes: every command says so, changes nothing" t_no_support
		skip_step "subvolumes on the mount" "this server has none"
	else
		skip_step "a mount without subvolumes" "this server has them"
		if step "create, snapshot (rw, -r, into a directory, the top level)" \
			t_create_and_snapshot; then
			step "property get/set ro; EROFS in a read-only snapshot" t_property
			step "list: text, JSON, -s -r -d" t_list
			step "show and space of a set" t_show_and_space
			step "set-default, get-default; the default cannot be deleted" t_default
			step "delete, sync, delete -c" t_delete_and_sync
		fi
	fi
	step "unmount" cowfs_umount "$MNT" "$IMG"
	step "fsck.cowfs: clean" run_fsck "$IMG"
fi
lib_summary
