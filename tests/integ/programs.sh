#!/usr/bin/env bash
# Real programs on a mounted filesystem: everything runs in a fresh directory below DIR.
#
#   bash tests/integ/programs.sh DIR
#
#   tar + make  a generated C project (52 files, a Makefile) is tarred outside DIR, untarred into
#               it, built with make -j2 and run; an unchanged tree rebuilds nothing, a touched
#               source rebuilds exactly its object (mtimes right); tarred back out and compared
#   git         init, add, commit (two commits), status clean, fsck --full --strict, log, gc,
#               fsck again, clone
#   rsync       a tree with symlinks, hard links, modes, mtimes, a sparse file, in (-aH) and back
#               out, compared with diff -r, checksums and a dry run that must find nothing to do
#   sqlite3     10,000 rows in 10 transactions, a rolled-back transaction, integrity_check and
#               the count; once with the rollback journal and once in WAL mode (shared mmap)
#
# Needs make, tar, git, rsync, sqlite3, cc, sha256sum: a missing one is a failure (install it).
# Each step prints PASS or FAIL; the exit status is 1 if any failed. The scratch directory
# below DIR is removed unless something failed or COWFS_KEEP=1. Sources to copy in are made
# under COWFS_TEST_DIR (default /tmp), which should be another filesystem than DIR.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: programs.sh DIR (an existing directory, e.g. a mountpoint)" >&2
	exit 2
fi
TARGET=$(cd "$1" && pwd)
TEST_ROOT=${COWFS_TEST_DIR:-/tmp}
mkdir -p "$TEST_ROOT"
SRC=$(mktemp -d "$TEST_ROOT/programs-src.XXXXXX")
DST=$(mktemp -d "$TARGET/programs.XXXXXX")
pass=0
fail=0
failed=()

cleanup() {
	local rc=$?
	rm -rf "$SRC"
	if [ "$fail" -eq 0 ] && [ "${COWFS_KEEP:-0}" != 1 ]; then
		rm -rf "$DST"
	else
		echo "programs: kept $DST"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

step() {
	local name=$1
	shift
	echo "---- $name"
	if "$@"; then
		pass=$((pass + 1))
		echo "PASS $name"
	else
		fail=$((fail + 1))
		failed+=("$name")
		echo "FAIL $name"
	fi
}

# expect DESCRIPTION COMMAND...: the command must succeed.
expect() {
	local what=$1
	shift
	"$@" && return 0
	echo "    expected: $what"
	echo "    command:  $*"
	return 1
}

# quiet LOG COMMAND...: run with output to LOG, show the end of LOG if it fails.
quiet() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 && return 0
	local rc=$?
	echo "    '$*' exited $rc:"
	tail -n 20 "$log" | sed 's/^/    | /'
	return $rc
}

# A checksum of every regular file's content with its path, and of every symlink's target.
tree_sums() {
	(cd "$1" && find . \( -type f -o -type l \) -printf '%y %p %l\n' | LC_ALL=C sort &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum)
}

# ---- tools ---------------------------------------------------------------------------------

t_tools() {
	local t missing=
	for t in make tar git rsync sqlite3 cc sha256sum diff cmp; do
		command -v "$t" >/dev/null || missing="$missing $t"
	done
	[ -z "$missing" ] && return 0
	echo "    missing:$missing (Debian packages: make tar git rsync sqlite3 gcc coreutils diffutils)"
	return 1
}

# ---- a generated C project: tar, make, run -------------------------------------------------

NMOD=24

# The project: NMOD modules (src/mN.c + include/mN.h), main.c, a Makefile, a README, a data
# file: 2 * NMOD + 4 files. Module i returns (x * (i + 3) + i) % 1000003.
gen_project() {
	local d=$1 i
	mkdir -p "$d/src" "$d/include" "$d/data"
	for i in $(seq 0 $((NMOD - 1))); do
		cat >"$d/include/m$i.h" <<-EOF
			#ifndef M${i}_H
			#define M${i}_H
			long m$i(long x);
			#endif
		EOF
		cat >"$d/src/m$i.c" <<-EOF
			#include "m$i.h"
			/* module $i */
			long m$i(long x)
			{
				return (x * ($i + 3) + $i) % 1000003;
			}
		EOF
	done
	{
		echo '#include <stdio.h>'
		for i in $(seq 0 $((NMOD - 1))); do echo "#include \"m$i.h\""; done
		echo 'int main(void)'
		echo '{'
		echo '	long x = 1;'
		for i in $(seq 0 $((NMOD - 1))); do echo "	x = m$i(x);"; done
		echo '	printf("result %ld\n", x);'
		echo '	return 0;'
		echo '}'
	} >"$d/src/main.c"
	# (printf with $T: a heredoc with <<- would strip the recipes' tabs)
	local T=$'\t'
	printf '%s\n' 'CC ?= cc' 'CFLAGS ?= -O1 -Wall -Werror' \
		'SRCS := $(sort $(wildcard src/*.c))' 'OBJS := $(SRCS:src/%.c=obj/%.o)' \
		'app: $(OBJS)' "$T"'$(CC) -o $@ $^' \
		'obj/%.o: src/%.c' "$T"'@mkdir -p obj' "$T"'$(CC) $(CFLAGS) -Iinclude -MMD -MP -c $< -o $@' \
		'clean:' "$T"'rm -rf obj app' '-include $(OBJS:.o=.d)' >"$d/Makefile"
	echo "A generated project: $NMOD modules." >"$d/README"
	head -c 300000 /dev/urandom >"$d/data/blob.bin"
}

# What the program prints, computed here.
expected_result() {
	local x=1 i
	for i in $(seq 0 $((NMOD - 1))); do x=$(((x * (i + 3) + i) % 1000003)); done
	echo "result $x"
}

t_tar_make() {
	local p=$DST/proj log=$DST/make.log out
	gen_project "$SRC/proj"
	expect "tar of the project" tar -C "$SRC" -czf "$SRC/proj.tar.gz" proj || return 1
	mkdir -p "$p"
	expect "untar on the target" tar -C "$DST" -xzf "$SRC/proj.tar.gz" || return 1
	expect "untarred tree equals the original" diff -r "$SRC/proj" "$p" || return 1
	quiet "$log" make -C "$p" -j2 || return 1
	out=$("$p/app") || { echo "    ./app failed"; return 1; }
	expect "app prints '$(expected_result)', got '$out'" [ "$out" = "$(expected_result)" ] ||
		return 1
	# Nothing to do on an unchanged tree (every object newer than its sources).
	quiet "$log" make -C "$p" -j2 || return 1
	if grep -q -- '-c src/' "$log"; then
		echo "    make recompiled an unchanged tree:"
		sed 's/^/    | /' "$log" | head
		return 1
	fi
	# A touched source: exactly that object is rebuilt.
	sleep 0.05
	touch "$p/src/m7.c"
	quiet "$log" make -C "$p" -j2 || return 1
	local n
	n=$(grep -c -- '-c src/' "$log")
	expect "one object rebuilt after touching src/m7.c, got $n" [ "$n" -eq 1 ] || return 1
	expect "the rebuilt one is m7" grep -q -- 'src/m7.c' "$log" || return 1
	out=$("$p/app")
	expect "app still prints the result" [ "$out" = "$(expected_result)" ] || return 1
	# And back out: tar on the target, untar elsewhere, compare.
	quiet "$log" make -C "$p" clean || return 1
	expect "tar from the target" tar -C "$DST" -cf "$SRC/back.tar" proj || return 1
	mkdir -p "$SRC/back"
	expect "untar the copy" tar -C "$SRC/back" -xf "$SRC/back.tar" || return 1
	expect "the tree came back the same" diff -r "$SRC/proj" "$SRC/back/proj" || return 1
}

# ---- git -----------------------------------------------------------------------------------

git_() { git -c user.name=cowfs -c user.email=cowfs@example.invalid -c init.defaultBranch=main \
	-c gc.auto=0 -c core.fsyncMethod=fsync -c core.fsync=all "$@"; }

t_git() {
	local r=$DST/repo log=$DST/git.log n
	[ -d "$SRC/proj" ] || gen_project "$SRC/proj"
	cp -a "$SRC/proj" "$r"
	quiet "$log" git_ -C "$r" init -q || return 1
	quiet "$log" git_ -C "$r" add -A || return 1
	quiet "$log" git_ -C "$r" commit -q -m "first: the generated project" || return 1
	# A second commit: a change, a rename, a deletion, a new file.
	echo "/* changed */" >>"$r/src/m3.c"
	git_ -C "$r" mv src/m5.c src/m5_renamed.c >"$log" 2>&1 || return 1
	git_ -C "$r" rm -q README >"$log" 2>&1 || return 1
	echo "new" >"$r/NEW"
	quiet "$log" git_ -C "$r" add -A || return 1
	quiet "$log" git_ -C "$r" commit -q -m "second" || return 1
	git_ -C "$r" status --porcelain >"$log" 2>&1 || return 1
	expect "git status is clean after the commit" [ ! -s "$log" ] || { cat "$log"; return 1; }
	quiet "$log" git_ -C "$r" fsck --full --strict --no-dangling || return 1
	n=$(git_ -C "$r" log --oneline | wc -l)
	expect "two commits in the log, got $n" [ "$n" -eq 2 ] || return 1
	git_ -C "$r" log -1 --format=%s >"$log"
	expect "the last commit is 'second'" grep -qx second "$log" || return 1
	quiet "$log" git_ -C "$r" gc -q --aggressive || return 1
	quiet "$log" git_ -C "$r" fsck --full --strict --no-dangling || return 1
	quiet "$log" git_ clone -q "$r" "$DST/clone" || return 1
	expect "the clone has the second commit's tree" diff -r -x .git "$r" "$DST/clone" || return 1
	git_ -C "$DST/clone" status --porcelain >"$log" 2>&1
	expect "the clone's status is clean" [ ! -s "$log" ] || return 1
}

# ---- rsync ---------------------------------------------------------------------------------

gen_rsync_tree() {
	local d=$1 i
	mkdir -p "$d/a/b/c" "$d/empty" "$d/modes"
	[ -d "$SRC/proj" ] || gen_project "$SRC/proj"
	cp -a "$SRC/proj" "$d/proj"
	for i in $(seq 1 200); do echo "file $i" >"$d/a/f$i"; done
	head -c 5000000 /dev/urandom >"$d/a/b/c/big.bin"
	ln "$d/a/f1" "$d/a/b/hardlink"
	ln -s ../f2 "$d/a/b/symlink"
	ln -s /nonexistent/target "$d/dangling"
	truncate -s 50M "$d/sparse"
	printf 'tail' | dd of="$d/sparse" bs=1 seek=$((30 << 20)) conv=notrunc status=none
	for m in 600 640 644 700 751 755 4755 2755 1777; do
		echo "$m" >"$d/modes/m$m"
		chmod "$m" "$d/modes/m$m"
	done
	touch -h -d '2003-04-05 06:07:08.123456789' "$d/a/f3" "$d/dangling"
	touch -d '1999-12-31 23:59:59' "$d/empty"
}

t_rsync() {
	local in=$DST/rsync_in out=$SRC/rsync_out log=$DST/rsync.log
	gen_rsync_tree "$SRC/tree"
	quiet "$log" rsync -aHS "$SRC/tree/" "$in/" || return 1
	expect "diff -r of the tree and the copy in" diff -r --no-dereference "$SRC/tree" "$in" ||
		return 1
	tree_sums "$SRC/tree" >"$SRC/sums.src"
	tree_sums "$in" >"$SRC/sums.in"
	expect "checksums of the copy in" cmp "$SRC/sums.src" "$SRC/sums.in" || return 1
	# Everything rsync -a keeps (times, modes, links) is as it was: a dry run finds nothing.
	rsync -aHni --checksum "$SRC/tree/" "$in/" >"$log" 2>&1 || return 1
	if [ -s "$log" ]; then
		echo "    rsync finds differences after copying in:"
		sed 's/^/    | /' "$log" | head -20
		return 1
	fi
	expect "a hard link came in as one" \
		[ "$(stat -c %i "$in/a/f1")" = "$(stat -c %i "$in/a/b/hardlink")" ] || return 1
	expect "mode 4755 came in" [ "$(stat -c %a "$in/modes/m4755")" = 4755 ] || return 1
	expect "nanosecond mtime came in" \
		[ "$(stat -c %y "$in/a/f3")" = "$(stat -c %y "$SRC/tree/a/f3")" ] || return 1
	quiet "$log" rsync -aHS "$in/" "$out/" || return 1
	expect "diff -r of the tree and the copy out" diff -r --no-dereference "$SRC/tree" "$out" ||
		return 1
	tree_sums "$out" >"$SRC/sums.out"
	expect "checksums of the copy out" cmp "$SRC/sums.src" "$SRC/sums.out" || return 1
	rsync -aHni --checksum "$in/" "$out/" >"$log" 2>&1 || return 1
	expect "nothing to do copying out again" [ ! -s "$log" ] || return 1
	# An update: changed, deleted and new files go across with --delete.
	echo changed >"$SRC/tree/a/f10"
	rm "$SRC/tree/a/f11"
	echo new >"$SRC/tree/a/new"
	quiet "$log" rsync -aHS --delete "$SRC/tree/" "$in/" || return 1
	expect "diff -r after an update" diff -r --no-dereference "$SRC/tree" "$in" || return 1
}

# ---- sqlite3 -------------------------------------------------------------------------------

# sqlite_run DB JOURNAL_MODE
sqlite_run() {
	local db=$1 mode=$2 log=$DST/sqlite.log sql=$SRC/load.sql i res
	{
		echo "PRAGMA journal_mode=$mode;"
		echo "CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL);"
		echo "CREATE INDEX t_k ON t(k);"
		for i in $(seq 0 9); do
			echo "BEGIN;"
			echo "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < 999)"
			echo "INSERT INTO t(k, v) SELECT $i * 1000 + x, printf('row %d %s', $i * 1000 + x, hex(randomblob(20))) FROM n;"
			echo "COMMIT;"
		done
		echo "BEGIN;"
		echo "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < 499)"
		echo "INSERT INTO t(k, v) SELECT 100000 + x, 'rolled back' FROM n;"
		echo "DELETE FROM t WHERE k < 5000;"
		echo "ROLLBACK;"
		echo "BEGIN; UPDATE t SET v = 'updated' WHERE k % 100 = 0; COMMIT;"
	} >"$sql"
	quiet "$log" sqlite3 -bail "$db" <"$sql" || return 1
	res=$(sqlite3 "$db" "PRAGMA integrity_check;") || return 1
	expect "integrity_check says ok, got '$res'" [ "$res" = ok ] || return 1
	res=$(sqlite3 "$db" "SELECT count(*), sum(k), count(DISTINCT k) FROM t;") || return 1
	expect "10000 rows, keys 0..9999 once each; got '$res'" [ "$res" = "10000|49995000|10000" ] ||
		return 1
	res=$(sqlite3 "$db" "SELECT count(*) FROM t WHERE v = 'updated';") || return 1
	expect "100 updated rows, got '$res'" [ "$res" = 100 ] || return 1
	res=$(sqlite3 "$db" "SELECT count(*) FROM t WHERE v = 'rolled back' OR k >= 100000;")
	expect "nothing of the rolled-back transaction, got '$res'" [ "$res" = 0 ] || return 1
	res=$(sqlite3 "$db" "PRAGMA journal_mode;")
	expect "journal mode $mode, got '$res'" [ "$res" = "$mode" ] || return 1
	# A copy through the filesystem reads back the same database.
	cp "$db" "$db.copy"
	[ -e "$db-wal" ] && cp "$db-wal" "$db.copy-wal"
	res=$(sqlite3 "$db.copy" "PRAGMA integrity_check; SELECT count(*) FROM t;" | tr '\n' ' ')
	expect "the copy is intact, got '$res'" [ "$res" = "ok 10000 " ] || return 1
}

t_sqlite_delete() { sqlite_run "$DST/rollback.db" delete; }
t_sqlite_wal() { sqlite_run "$DST/wal.db" wal; }

# ---- run -----------------------------------------------------------------------------------

echo "programs: in $DST"
step "programs: make tar git rsync sqlite3 cc are installed" t_tools
step "programs: untar a C project, make, run, rebuild by mtime, tar back" t_tar_make
step "programs: git init/add/commit, status, fsck, log, gc, clone" t_git
step "programs: rsync -aHS in and out, diff -r, checksums" t_rsync
step "programs: sqlite3, rollback journal: 10,000 rows, rollback, integrity_check" t_sqlite_delete
step "programs: sqlite3, WAL: 10,000 rows, rollback, integrity_check" t_sqlite_wal

for f in "${failed[@]}"; do echo "programs: failed: $f"; done
echo "programs: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
