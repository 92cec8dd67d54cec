#!/usr/bin/env bash
# The seeded sharing churn on a mount (tests/integ/share_churn.c): thousands of writes,
# overwrites, truncates, punches, clones, dedupes and unlinks across files and directories,
# every file checked against the program's model after each step; then `cowfs du -s --json`
# of every directory and of a set of two equals the figures the model recomputes, statfs's used
# space equals what fsck.cowfs adds up, and fsck is clean.
#
#   bash tests/integ/test_churn.sh
#
# Environment: BIN (build/bin), COWFS_TEST_DIR (scratch), SHARE_CHURN (a prebuilt share_churn;
# default BIN/../tests/share_churn), COWFS_CHURN_STEPS (default 3000), COWFS_CHURN_SEED.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

CHURN=${SHARE_CHURN:-$BIN/../tests/share_churn}
STEPS=${COWFS_CHURN_STEPS:-3000}
SEED=${COWFS_CHURN_SEED:-20261202}

lib_init test_churn
IMG=$WORK/churn.img
MNT=$WORK/mnt

t_churn() {
	run "$CHURN" -q -S "$SEED" -N "$STEPS" --expect "$WORK/expect.json" "$MNT"
	cat "$LIB_OUT"
	[ "$LIB_RC" -eq 0 ] || { show_output; return 1; }
}

# `cowfs du -s --json` per directory and for the set {d0, d1} against the model's figures.
t_du_matches_model() {
	run "$COWFS" du -s --json "$MNT/d0" "$MNT/d1" "$MNT/d2" "$MNT/d3"
	[ "$LIB_RC" -eq 0 ] || { show_output; return 1; }
	cp "$LIB_OUT" "$WORK/du.json"
	run "$COWFS" du -s --json "$MNT/d0" "$MNT/d1"
	[ "$LIB_RC" -eq 0 ] || { show_output; return 1; }
	cp "$LIB_OUT" "$WORK/du-set.json"
	python3 - "$WORK/expect.json" "$WORK/du.json" "$WORK/du-set.json" "$MNT" <<'PY'
import json, os, sys
expect = json.load(open(sys.argv[1]))
du = json.load(open(sys.argv[2]))
du_set = json.load(open(sys.argv[3]))
mnt = sys.argv[4]
fields = ("referenced", "exclusive", "shared", "pinned")
bad = 0
def by_path(doc):
    return {os.path.relpath(p["path"], mnt): p for p in doc["paths"]}
for rel, got in by_path(du).items():
    want = expect[rel]
    for f in fields:
        if got[f] != want[f]:
            print("    du %s: %s %d, model %d" % (rel, f, got[f], want[f])); bad = 1
want = expect["set:d0,d1"]
got = du_set["set"]
for f in fields:
    if got[f] != want[f]:
        print("    du set {d0,d1}: %s %d, model %d" % (f, got[f], want[f])); bad = 1
sys.exit(bad)
PY
}

# statfs's used bytes (after a sync) against fsck's sum of extents, once unmounted.
t_statfs_equals_fsck() {
	"$COWFS" sync "$MNT" >/dev/null || return 1
	local used
	local blocks free bsize
	read -r blocks free bsize < <(stat -f -c '%b %f %S' "$MNT")
	used=$(((blocks - free) * bsize))
	cowfs_umount "$MNT" "$IMG" || return 1
	run_fsck "$IMG" || return 1
	local fsck_used
	fsck_used=$(sed -n 's/.* \([0-9]*\) bytes used,.*/\1/p' "$LIB_OUT")
	echo "    statfs used $used, fsck $fsck_used"
	[ -n "$fsck_used" ] && [ "$used" = "$fsck_used" ]
}

step "mkfs.cowfs -s 1G" cowfs_mkfs "$IMG" 1G || { lib_summary; exit 1; }
if step "mount" cowfs_mount "$IMG" "$MNT"; then
	step "share_churn: $STEPS steps (seed $SEED), every file against the model" t_churn &&
		step "cowfs du -s --json equals the model's figures" t_du_matches_model
	step "statfs used space equals fsck's; fsck clean" t_statfs_equals_fsck
fi
lib_summary
