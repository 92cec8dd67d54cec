#!/usr/bin/env bash
# Integration tests of the mount's ioctls (docs/IOCTL.md) issued directly by ioctl_check
# (tests/integ/ioctl_check.c): FILE_ID, CLONE_RANGE, DEDUPE_RANGE, FIEMAP, CHUNK_HASHES, SPACE,
# SYNC, STATS, with good arguments (results checked: content, sizes, figures, counters) and
# with bad ones (the errno checked, and the tree unchanged), as root and as an unprivileged user without
# access; on a read-only mount (EROFS); after an aborted transaction (SYNC: EIO); SYNC then
# kill -9 then remount (the data is there); clones beside a reader with one request thread;
# STATS after `cp` with and without -o noreflink; fsck clean after every unmount.
#
# "Unchanged" is checked with two digests taken before and after each batch of bad calls:
#   - the mount's listing (path, inode, mode, size, blocks, links, owner, mtime, ctime) and
#     the sha256 of every file's content, plus the STATS counters of what was shared;
#   - the committed generation after a SYNC: SYNC commits only when something changed, so
#     an unchanged generation means not one tree item changed, not even one a digest of the
#     mount would not show (extent items, refcounts, checksums). (The counters of calls are
#     left out: a refused call is still a call.)
#
#   bash tests/integ/test_ioctl.sh
#
# Environment: BIN (build/bin), IOCTL_CHECK (default BIN/../tests/ioctl_check), COWFS_TEST_DIR,
# COWFS_NONROOT_UID (default 65534), COWFS_KEEP=1.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integ/lib.sh
. "$HERE/lib.sh"

IC=${IOCTL_CHECK:-$BIN/../tests/ioctl_check}
for b in "$MKFS" "$FSCK" "$COWFS" "$IC"; do
	if [ ! -x "$b" ]; then
		echo "test_ioctl: $b is missing: build first (make all $IC)" >&2
		exit 1
	fi
done
IC=$(abspath "$IC")

NONROOT_UID=${COWFS_NONROOT_UID:-65534}
lib_init test_ioctl --other-user "$NONROOT_UID"
IMG=$WORK/cowfs.img
MNT=$WORK/mnt
D=$MNT/t
K=262144   # the source's size: 256 KiB
IC_NONROOT=$(lib_reachable "$NONROOT_UID" "$IC") || exit 1

# id_of PATH: @SUBVOL:INO:GEN, to name PATH without opening it.
id_of() {
	"$IC" id "$1" | sed 's/subvol=\([0-9]*\) ino=\([0-9]*\) gen=\([0-9]*\).*/@\1:\2:\3/'
}

# The committed generation after a SYNC.
synced_generation() {
	"$IC" sync "$MNT" >/dev/null || return 1
	"$COWFS" status --json "$MNT" | grep -o '"generation":[0-9]*' | cut -d: -f2
}

# What the mount shows, and the sharing counters (see the top).
mount_digest() {
	(cd "$MNT" && find . -printf '%p %i %m %s %b %n %U %G %T@ %C@\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
	"$IC" stats "$MNT" | grep -E '^(copy_bytes|clone_bytes|dedupe_bytes_same)'
}

DIGEST_FILE=$WORK/digest
GEN_BEFORE=
digest_take() {
	GEN_BEFORE=$(synced_generation) && mount_digest >"$DIGEST_FILE"
}
digest_same() {
	local gen
	gen=$(synced_generation) || return 1
	mount_digest >"$DIGEST_FILE.after"
	if ! cmp -s "$DIGEST_FILE" "$DIGEST_FILE.after"; then
		echo "    the mount changed:"
		diff "$DIGEST_FILE" "$DIGEST_FILE.after" | sed -n '1,20s/^/    | /p'
		return 1
	fi
	expect "committed generation after the bad calls (a change would have committed)" \
		"$gen" "$GEN_BEFORE"
}

t_setup() {
	# noatime: the "nothing changed" checks compare committed generations, and a read that
	# updates atime (relatime, issue 12 item 7) is a change of its own.
	cowfs_mkfs "$IMG" 1G && cowfs_mount "$IMG" "$MNT" allow_other,noatime || return 1
	mkdir -p "$D/sub" && chmod 755 "$D" || return 1
	head -c $K /dev/urandom >"$WORK/src" && cp "$WORK/src" "$D/src" || return 1
	head -c $K /dev/urandom >"$D/dst" && head -c 10000 /dev/urandom >"$D/tail" || return 1
	# For the unprivileged user: a secret source, a destination it owns, one it may not write
	# (with the source's bytes, so that only the permission stops a dedupe).
	head -c $K /dev/urandom >"$D/secret" && chmod 600 "$D/secret" || return 1
	cp "$WORK/src" "$D/theirs" && chown "$NONROOT_UID:$NONROOT_UID" "$D/theirs" || return 1
	cp "$WORK/src" "$D/rootonly" && chmod 644 "$D/rootonly" "$D/src" || return 1
	"$IC" sync "$MNT" >/dev/null
}

t_file_id() {
	local ino gen
	ic id "$D/src" || return 1
	expect "blocksize" "$(field blocksize)" 4096 || return 1
	expect "version" "$(field version)" 1 || return 1
	expect "ino" "$(field ino)" "$(stat -c %i "$D/src")" || return 1
	ic id "$MNT" && expect "the root's ino" "$(field ino)" "$(stat -c %i "$MNT")" || return 1
	local subvol
	subvol=$(field subvol)
	ic id "$D/sub" && expect "a directory's ino" "$(field ino)" "$(stat -c %i "$D/sub")" || return 1
	expect "one subvol for the mount" "$(field subvol)" "$subvol" || return 1
	# A number freed and used again comes with another generation.
	touch "$D/g1" && ic id "$D/g1" && ino=$(field ino) gen=$(field gen) || return 1
	rm "$D/g1" && touch "$D/g2" && ic id "$D/g2" || return 1
	if [ "$(field ino)" = "$ino" ]; then
		[ "$(field gen)" != "$gen" ] || { echo "    inode $ino reused with generation $gen"; return 1; }
	fi
	rm "$D/g2"
}

t_clone_bad() {
	digest_take || return 1
	local s=$D/src t=$D/dst
	ic -e EINVAL clone -V 2 "$s" "$t" &&
	ic -e EINVAL clone -F 1 "$s" "$t" &&
	ic -e EINVAL clone "$s" "$t" 1 4096 0 &&
	ic -e EINVAL clone "$s" "$t" 0 4096 100 &&
	ic -e EINVAL clone "$s" "$t" 0 5000 0 &&
	ic -e EINVAL clone "$s" "$s" 0 131072 65536 &&
	ic -e EINVAL clone "$s" "$t" $K 4096 0 &&
	ic -e EINVAL clone "$s" "$t" $((4 * K)) 4096 0 &&
	ic -e EINVAL clone "$s" "$t" 0 $((2 * K)) 0 &&
	ic -e EINVAL clone "$s" "$t" 0 4096 9223372036854775808 &&
	ic -e ENOENT clone -I 99999999 "$s" "$t" &&
	ic -e ENOENT clone -I 5 "$s" "$t" &&
	ic -e ESTALE clone -G 1 "$s" "$t" &&
	# Subvolume 6 does not exist (files of other subvolumes clone: test_subvol.sh).
	ic -e ENOENT clone -S 1 "$s" "$t" &&
	ic -e EISDIR clone -o dir "$s" "$D/sub" &&
	ic -e EISDIR clone "$D/sub" "$t" &&
	ic -e EBADF clone -o ro "$s" "$t" &&
	ic -e EBADF clone -o append "$s" "$t" || return 1
	digest_same
}

t_clone_good() {
	local before after
	ic stats "$MNT" && before=$(field clone_bytes) || return 1
	# Whole file (length 0: to the end), onto a file the kernel has cached: the next read and
	# stat see the clone, not the cached pages and size.
	head -c 65536 /dev/zero >"$D/c1" && cat "$D/c1" >/dev/null || return 1
	ic clone "$D/src" "$D/c1" && expect cloned "$(field cloned)" $K || return 1
	expect "size right after" "$(stat -c %s "$D/c1")" $K || return 1
	cmp "$WORK/src" "$D/c1" || { echo "    the clone reads otherwise"; return 1; }
	ic stats "$MNT" && after=$(field clone_bytes) || return 1
	expect "STATS clone_bytes" "$after" $((before + K)) || return 1
	# An unaligned tail is cloned when the range ends at the source's end.
	touch "$D/c2" && ic clone "$D/tail" "$D/c2" && expect cloned "$(field cloned)" 10000 || return 1
	cmp "$D/tail" "$D/c2" || return 1
	# Past the destination's end: it grows.
	touch "$D/c3" && ic clone "$D/src" "$D/c3" 65536 65536 1048576 || return 1
	expect "grown size" "$(stat -c %s "$D/c3")" $((1048576 + 65536)) || return 1
	cmp <(tail -c 65536 "$D/c3") <(head -c 131072 "$WORK/src" | tail -c 65536) || return 1
	# The same file, ranges apart.
	cp "$WORK/src" "$D/c4" && ic clone "$D/c4" "$D/c4" 0 65536 131072 || return 1
	cmp <(head -c 65536 "$WORK/src") <(tail -c +131073 "$D/c4" | head -c 65536) || return 1
	# The extents are shared now (FIEMAP, after SYNC wrote everything back).
	ic fiemap -F 1 "$D/c1" && grep -q shared "$LIB_OUT" ||
		{ echo "    no shared extent in the clone"; show_output; return 1; }
}

# Pages dirtied through mmap and not msync'ed: the clone sees the source's, and the
# destination's do not land over the clone afterwards (the kernel's remap writes both back
# first; the server does it for the ioctl). FUSE's tight dirty limit usually has the kernel
# write such pages back at once anyway, so this checks the outcome more than the mechanism.
t_clone_mmap() {
	cp "$WORK/src" "$D/m.src" && cp "$WORK/src" "$D/m.dst" || return 1
	python3 - "$IC" "$D/m.src" "$D/m.dst" <<-'EOF'
		import mmap, os, subprocess, sys
		ic, src, dst = sys.argv[1:4]
		def mapped(path):
		    fd = os.open(path, os.O_RDWR)
		    return fd, mmap.mmap(fd, 262144)
		sfd, sm = mapped(src)
		sm[4096:8192] = b"\xab" * 4096            # dirty, not msync'ed
		subprocess.run([ic, "clone", src, dst, "0", "65536", "131072"], check=True,
		               stdout=subprocess.DEVNULL)
		with open(dst, "rb") as f:
		    f.seek(131072 + 4096)
		    got = f.read(4096)
		if got != b"\xab" * 4096:
		    sys.exit("    the clone missed the source's mmap'ed write")
		dfd, dm = mapped(dst)
		dm[0:4096] = b"\xcd" * 4096               # dirty in the range cloned over next
		subprocess.run([ic, "clone", src, dst, "65536", "65536", "0"], check=True,
		               stdout=subprocess.DEVNULL)
		with open(src, "rb") as f:
		    f.seek(65536)
		    want = f.read(65536)
		dm.flush(); sm.flush()
		with open(dst, "rb") as f:
		    got = f.read(65536)
		if got != want:
		    sys.exit("    the destination's dirty page landed over the clone")
		if dm[0:65536] != want:
		    sys.exit("    the destination's mapping shows the old bytes")
	EOF
}

t_dedupe_bad() {
	digest_take || return 1
	local s=$D/src
	ic -e EINVAL dedupe -n 0 "$s" 0 4096 "$D/rootonly:0" &&
	ic -e EINVAL dedupe -n 65 "$s" 0 4096 "$D/rootonly:0" &&
	ic -e EINVAL dedupe -V 2 "$s" 0 4096 "$D/rootonly:0" &&
	ic -e EINVAL dedupe -o wo "$s" 0 4096 "$D/rootonly:0" &&
	ic -e EISDIR dedupe -o dir "$D/sub" 0 4096 "$D/rootonly:0" &&
	ic -e EINVAL dedupe "$s" $K 4096 "$D/rootonly:0" &&
	ic -e EINVAL dedupe "$s" 0 $((2 * K)) "$D/rootonly:0" || return 1
	# Per destination: each its own status; the call itself works.
	ic dedupe -S 1 "$s" 0 65536 "$D/rootonly:0" "$D/sub:0" "$D/dst:0" &&
		expect statuses "$(field status)" ENOENT,EISDIR,differs || return 1
	ic dedupe -G 1 "$s" 0 65536 "$D/rootonly:0" "$D/rootonly:100" &&
		expect statuses "$(field status)" ESTALE,EINVAL || return 1
	ic dedupe -I 99999999 "$s" 0 65536 "$D/rootonly:0" &&
		expect statuses "$(field status)" ENOENT || return 1
	ic dedupe -R 1 "$s" 0 65536 "$D/rootonly:0" &&
		expect statuses "$(field status)" EINVAL || return 1
	digest_same
}

t_dedupe_good() {
	local before
	ic stats "$MNT" && before=$(field dedupe_bytes_same) || return 1
	cp "$WORK/src" "$D/d1" && cp "$WORK/src" "$D/d2" && "$IC" sync "$MNT" >/dev/null || return 1
	ic dedupe "$D/src" 0 $K "$D/d1:0" "$D/d2:0" "$D/dst:0" || return 1
	expect statuses "$(field status)" same,same,differs || return 1
	expect deduped "$(field deduped)" "$K,$K,0" || return 1
	cmp "$WORK/src" "$D/d1" && cmp "$WORK/src" "$D/d2" || return 1
	ic stats "$MNT" && expect "STATS dedupe_bytes_same" "$(field dedupe_bytes_same)" \
		$((before + 2 * K)) || return 1
	ic fiemap -F 1 "$D/d2" && grep -q shared "$LIB_OUT" || { show_output; return 1; }
	# A longer request is cut to COWFS_DEDUPE_MAX_LEN (16 MiB).
	head -c $((20 << 20)) /dev/urandom >"$D/big" && cp "$D/big" "$D/big2" || return 1
	ic dedupe "$D/big" 0 $((20 << 20)) "$D/big2:0" &&
		expect "deduped of 20 MiB" "$(field deduped)" $((16 << 20)) || return 1
	cmp "$D/big" "$D/big2" && rm -f "$D/big" "$D/big2"
}

t_fiemap() {
	digest_take || return 1
	ic -e EINVAL fiemap -V 2 "$D/src" &&
	ic -e EINVAL fiemap -F 2 "$D/src" &&
	ic -e EINVAL fiemap "$D/src" 0 0 &&
	ic -e EOPNOTSUPP fiemap "$D/sub" || return 1
	ic fiemap -F 1 "$D/src" || return 1
	local n
	n=$(field count)
	[ "$n" -ge 1 ] || { echo "    count $n"; return 1; }
	tail -1 "$LIB_OUT" | grep -q last || { echo "    no LAST on the last extent"; show_output; return 1; }
	# The extents cover the file's 256 KiB.
	expect "mapped bytes" "$(awk 'NR > 1 { s += $3 } END { print s }' "$LIB_OUT")" $K || return 1
	# Past the end: nothing.
	ic fiemap "$D/src" $((4 * K)) 4096 && expect "count past EOF" "$(field count)" 0 || return 1
	digest_same
}

# chunks_of PATH CHUNK [FLAGS...]: "OFFSET LENGTH HASH FLAGS" of each chunk, in $WORK/chunks.
chunks_of() {
	local path=$1 chunk=$2
	shift 2
	ic chunks "$@" "$path" "$chunk" || return 1
	awk 'NR > 1 { print $1, $2, $4, $5 }' "$LIB_OUT" >"$WORK/chunks"
}

# CHUNK_HASHES: the request's checks (errno, nothing changed); copies written apart get equal
# fingerprints at other places, other bytes other ones; the tail chunk ends at end of file;
# written data is hashed after SYNC; a clone's chunks are SHARED, at the source's place.
t_chunks() {
	digest_take || return 1
	ic -e EINVAL chunks -V 2 "$D/src" 65536 &&
	ic -e EINVAL chunks -F 2 "$D/src" 65536 &&
	ic -e EINVAL chunks -R 1 "$D/src" 65536 &&
	ic -e EINVAL chunks "$D/src" 0 &&
	ic -e EINVAL chunks "$D/src" 1000 &&
	ic -e EINVAL chunks "$D/src" $(((16 << 20) + 4096)) &&
	ic -e EINVAL chunks "$D/src" 65536 4096 &&
	ic -e EBADF chunks -o wo "$D/src" 65536 &&
	ic -e EISDIR chunks -o dir "$D/sub" 65536 || return 1
	ic chunks "$D/src" 65536 $((4 * K)) && expect "count past EOF" "$(field count)" 0 || return 1
	ic chunks "$D/src" $((16 << 20)) && expect "count of one 16 MiB chunk" "$(field count)" 1 &&
		expect "its length" "$(sed -n 2p "$LIB_OUT" | cut -d' ' -f2)" $K || return 1
	ic chunks -F 1 -o rw "$D/src" 65536 || return 1
	digest_same || return 1

	# Files of their own: earlier steps made src share with others.
	cp "$WORK/src" "$D/ch_a" && cp "$WORK/src" "$D/ch_b" && head -c $K /dev/urandom >"$D/ch_c" &&
		"$IC" sync "$MNT" >/dev/null || return 1
	chunks_of "$D/ch_a" 65536 && cp "$WORK/chunks" "$WORK/chunks.a" || return 1
	expect "chunks of ch_a" "$(wc -l <"$WORK/chunks.a")" 4 || return 1
	expect "ch_a's chunks hashed, contiguous, not shared" \
		"$(cut -d' ' -f4 "$WORK/chunks.a" | sort -u)" hashed,contiguous || return 1
	local a_phys
	a_phys=$(sed -n 2p "$LIB_OUT" | cut -d' ' -f3)
	chunks_of "$D/ch_b" 65536 && cmp -s "$WORK/chunks" "$WORK/chunks.a" ||
		{ echo "    a copy written apart fingerprints otherwise"; diff "$WORK/chunks.a" "$WORK/chunks"; return 1; }
	[ "$(sed -n 2p "$LIB_OUT" | cut -d' ' -f3)" != "$a_phys" ] ||
		{ echo "    the copy is at the first one's place"; return 1; }
	chunks_of "$D/ch_c" 65536 || return 1
	expect "fingerprints other bytes share with ch_a" \
		"$(cut -d' ' -f3 "$WORK/chunks" "$WORK/chunks.a" | sort | uniq -d | wc -l)" 0 || return 1
	# 10000 bytes in chunks of 4 KiB: the last is 1808 bytes.
	chunks_of "$D/tail" 4096 && expect "tail chunks" "$(wc -l <"$WORK/chunks")" 3 &&
		expect "tail chunk" "$(tail -1 "$WORK/chunks" | cut -d' ' -f1,2)" "8192 1808" &&
		expect "tail chunks hashed" "$(grep -c ' hashed' "$WORK/chunks")" 3 || return 1
	# Written now, hashed once SYNC writes it back; the same bytes written apart alike.
	head -c 100000 /dev/urandom >"$WORK/ch_fresh" && cp "$WORK/ch_fresh" "$D/ch_fresh" || return 1
	chunks_of "$D/ch_fresh" 65536 -F 1 && cp "$WORK/chunks" "$WORK/chunks.fresh" &&
		expect "fresh chunks" "$(cut -d' ' -f1,2,4 "$WORK/chunks" | tr '\n' ' ')" \
			"0 65536 hashed,contiguous 65536 34464 hashed,contiguous " || return 1
	cp "$WORK/ch_fresh" "$D/ch_fresh2" && chunks_of "$D/ch_fresh2" 65536 -F 1 &&
		cmp -s "$WORK/chunks" "$WORK/chunks.fresh" ||
		{ echo "    the same bytes written apart fingerprint otherwise"; return 1; }
	# A clone: the same fingerprints, SHARED on both sides, at one place.
	touch "$D/ch_clone" && ic clone "$D/ch_a" "$D/ch_clone" || return 1
	ic chunks "$D/ch_clone" 65536 &&
		expect "the clone's first chunk's place" "$(sed -n 2p "$LIB_OUT" | cut -d' ' -f3)" \
			"$a_phys" || return 1
	chunks_of "$D/ch_clone" 65536 &&
		expect "the clone's fingerprints" "$(cut -d' ' -f1-3 "$WORK/chunks")" \
			"$(cut -d' ' -f1-3 "$WORK/chunks.a")" &&
		expect "the clone's chunks" "$(cut -d' ' -f4 "$WORK/chunks" | sort -u)" \
			hashed,contiguous,shared || return 1
	chunks_of "$D/ch_a" 65536 &&
		expect "ch_a's chunks after the clone" "$(cut -d' ' -f4 "$WORK/chunks" | sort -u)" \
			hashed,contiguous,shared || return 1
	rm -f "$D"/ch_*
}

t_space() {
	local id
	digest_take || return 1
	ic -e EINVAL space-op "$D/src" 9 0 &&
	ic -e EINVAL space-op -V 2 "$D/src" 0 0 &&
	ic -e ENOENT space-op "$D/src" 2 999999 &&
	ic -e ENOENT space-op "$D/src" 1 999999 || return 1
	digest_same || return 1
	# A file and its clone: alone, each shares all of it; together, nothing is shared and
	# all of it is exclusive (deleting both frees it).
	cp "$WORK/src" "$D/s1" && touch "$D/s2" && ic clone "$D/s1" "$D/s2" &&
		"$IC" sync "$MNT" >/dev/null || return 1
	ic space "$D/s1" || return 1
	expect "s1 alone: shared" "$(field shared)" $K && expect "exclusive" "$(field exclusive)" 0 ||
		return 1
	ic space-set "$D/s1" "$D/s2" || return 1
	expect "{s1,s2}: exclusive" "$(field exclusive)" $K && expect "shared" "$(field shared)" 0 &&
		expect "referenced" "$(field referenced)" $((2 * K)) && expect "files" "$(field files)" 2 ||
		return 1
	# On a directory (FUSE_IOCTL_DIR): everything below.
	ic space "$D" && [ "$(field files)" -ge 10 ] || { show_output; return 1; }
	# At most 16 sets live: the 17th drops the oldest; ids are not reused.
	local ids=()
	for i in $(seq 17); do
		ic space-op "$D/s1" 1 0 || return 1
		ids+=("$(field set)")
	done
	ic -e ENOENT space-op "$D/s1" 2 "${ids[0]}" || return 1
	ic space-op "$D/s1" 2 "${ids[1]}" && expect "set 2 figures" "$(field files)" 1 || return 1
	[ "${ids[16]}" -gt "${ids[15]}" ] || { echo "    ids ${ids[*]}"; return 1; }
	# Another user's set is as good as absent; its owner still has it.
	ic space-op "$D/s1" 1 0 && id=$(field set) || return 1
	ic_as_nonroot -e ENOENT space-op "$D" 2 "$id" || return 1
	ic space-op "$D/s2" 1 "$id" && ic space-op "$D" 2 "$id" &&
		expect "the owner's set" "$(field exclusive)" $K
}

t_misc() {
	digest_take || return 1
	ic -e ENOTTY raw "$D/src" 99 && ic -e ENOTTY raw "$D/sub" 99 || return 1
	ic stats "$D/sub" && expect "STATS version" "$(field version)" 1 || return 1
	# fsync requests are counted (then SYNC leaves nothing to commit: the digest holds).
	local fsyncs
	fsyncs=$(field fsyncs)
	python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.fdatasync(fd)' \
		"$D/src" || return 1
	ic stats "$MNT" && expect "STATS fsyncs" "$(field fsyncs)" $((fsyncs + 2)) || return 1
	ic sync "$D/sub" && ic sync "$D/src" || return 1
	digest_same
}

# Unprivileged, without access to the source: EACCES; dedupe onto a file it may not write:
# EPERM for that destination; onto its own file: allowed.
t_unprivileged() {
	local secret
	secret=$(id_of "$D/secret") || return 1
	digest_take || return 1
	ic_as_nonroot -e EACCES clone "$secret" "$D/theirs" || return 1
	ic_as_nonroot -e EACCES clone "$secret" "$D/theirs" 0 4096 0 || return 1
	ic_as_nonroot dedupe "$D/src" 0 65536 "$D/rootonly:0" "$secret:0" || return 1
	expect "statuses (not writable, not writable)" "$(field status)" EPERM,EPERM || return 1
	digest_same || return 1
	# A readable source onto its own file works, and so does dedupe onto its own file.
	ic_as_nonroot clone "$D/src" "$D/theirs" 0 65536 0 || return 1
	ic_as_nonroot dedupe "$D/src" 65536 65536 "$D/theirs:65536" || return 1
	expect "onto its own file" "$(field status)" same || return 1
	cmp "$WORK/src" "$D/theirs"
}

# SYNC returns once the data is durable: kill -9 right after it, remount, the data is there.
t_sync_kill() {
	head -c $((3 << 20)) /dev/urandom >"$WORK/k" && cp "$WORK/k" "$D/k" || return 1
	touch "$D/kc" && ic clone "$D/k" "$D/kc" || return 1
	ic sync "$D/sub" || return 1
	kill -KILL $(cowfs_pids "$IMG")
	wait_daemon_exit "$IMG" 10 || return 1
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG" || return 1
	cowfs_mount "$IMG" "$MNT" allow_other,noatime || return 1
	cmp "$WORK/k" "$D/k" && cmp "$WORK/k" "$D/kc" || { echo "    synced data lost"; return 1; }
}

# coreutils cp copies with copy_file_range: shared, and with -o noreflink copied.
t_stats_cp() {
	local calls shared copied
	ic stats "$MNT" && calls=$(field copy_calls) shared=$(field copy_bytes_shared) || return 1
	cp "$D/k" "$D/cp1" || return 1
	ic stats "$MNT" || return 1
	[ "$(field copy_calls)" -gt "$calls" ] || { echo "    cp made no copy_file_range"; show_output; return 1; }
	expect "copy_bytes_shared" "$(field copy_bytes_shared)" $((shared + (3 << 20))) || return 1
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG" || return 1
	cowfs_mount "$IMG" "$MNT" allow_other,noreflink || return 1
	cp "$D/k" "$D/cp2" && cmp "$D/k" "$D/cp2" || return 1
	ic stats "$MNT" || return 1
	expect "noreflink: copy_bytes_shared" "$(field copy_bytes_shared)" 0 &&
		expect "noreflink: copy_bytes_copied" "$(field copy_bytes_copied)" $((3 << 20)) || return 1
	ic fiemap -F 1 "$D/cp2" && ! grep -q shared "$LIB_OUT" ||
		{ echo "    a noreflink copy shares"; show_output; return 1; }
	# Explicit clones still share.
	touch "$D/cp3" && ic clone "$D/k" "$D/cp3" && ic fiemap -F 1 "$D/cp3" &&
		grep -q shared "$LIB_OUT" || { show_output; return 1; }
}

t_read_only() {
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG" || return 1
	cowfs_mount "$IMG" "$MNT" ro,allow_other || return 1
	ic -e EROFS clone -o ro "$D/src" "$D/dst" &&
	ic -e EROFS dedupe "$D/src" 0 4096 "$D/rootonly:0" || return 1
	ic sync "$MNT" && ic fiemap "$D/src" && ic space "$D/src" && ic stats "$MNT" && ic id "$D/src" &&
		ic chunks "$D/src" 65536
}

# After an abort: SYNC is EIO (what was written since the last commit is gone), clones EROFS.
t_abort() {
	local img=$WORK/abort.img mnt=$WORK/abort
	cowfs_mkfs "$img" 128M && cowfs_mount "$img" "$mnt" || return 1
	head -c 65536 /dev/urandom >"$mnt/a" && touch "$mnt/b" && "$IC" sync "$mnt" >/dev/null ||
		return 1
	cowfs_umount "$mnt" "$img" || return 1
	COWFS_FAULT_INJECT=3:5 cowfs_mount "$img" "$mnt" || return 1
	touch "$mnt/new" 2>/dev/null && { echo "    the create with a failure injected worked"; return 1; }
	ic -e EIO sync "$mnt" && ic -e EROFS clone -o ro "$mnt/a" "$mnt/b" || return 1
	ic stats "$mnt" && ic fiemap "$mnt/a" || return 1
	cowfs_umount "$mnt" "$img" && run_fsck "$img" && rm -f "$img"
}

# This mount's FUSE connection (its device minor), to abort it if a test hangs in the kernel.
fuse_abort() {
	local minor
	mountpoint -q /sys/fs/fuse/connections ||
		mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null
	minor=$(findmnt -rn -o MAJ:MIN --mountpoint "$(abspath "$1")" | cut -d: -f2)
	[ -n "$minor" ] && [ -w "/sys/fs/fuse/connections/$minor/abort" ] &&
		echo 1 >"/sys/fs/fuse/connections/$minor/abort"
}

# With one request thread (-s), clones onto a file another process keeps reading: dropping
# the destination's pages waits for a read in flight, which only a free request thread can
# answer (this hung before clones ran on threads of their own). A hang fails the step after
# 60 s and aborts the connection so that nothing stays stuck.
t_single_thread_reader() {
	local img=$WORK/single.img mnt=$WORK/single rp ok=0 i
	cowfs_mkfs "$img" 256M && cowfs_mount "$img" "$mnt" "" -s || return 1
	head -c $((4 << 20)) /dev/urandom >"$mnt/src" && cp "$mnt/src" "$mnt/dst" || return 1
	(for i in $(seq 400); do cat "$mnt/dst" >/dev/null 2>&1 || break; done) &
	rp=$!
	for i in $(seq 40); do
		timeout 60 "$IC" clone "$mnt/src" "$mnt/dst" >/dev/null 2>&1 || break
		ok=$((ok + 1))
	done
	if [ $ok -lt 40 ]; then
		echo "    clone $((ok + 1)) of 40 failed or hung: aborting the connection"
		fuse_abort "$mnt"
		kill $rp 2>/dev/null
		wait $rp 2>/dev/null
		return 1
	fi
	wait $rp
	cmp "$mnt/src" "$mnt/dst" || return 1
	cowfs_umount "$mnt" "$img" && run_fsck "$img" && rm -f "$img"
}

t_umount_fsck() {
	cowfs_umount "$MNT" "$IMG" && run_fsck "$IMG"
}

if step setup t_setup; then
	step "FILE_ID on files, directories, the root" t_file_id
	step "CLONE_RANGE bad arguments: errno, nothing changed" t_clone_bad
	step "CLONE_RANGE: whole, unaligned tail, growing, same file; cache dropped; STATS" t_clone_good
	step "CLONE_RANGE with pages dirtied through mmap on both sides" t_clone_mmap
	step "DEDUPE_RANGE bad arguments and per-destination errors: nothing changed" t_dedupe_bad
	step "DEDUPE_RANGE: same/differs, 16 MiB cap, STATS" t_dedupe_good
	step "FIEMAP: bad arguments, extents, a directory" t_fiemap
	step "CHUNK_HASHES: bad arguments, equal copies, tail, SYNC, a clone" t_chunks
	step "SPACE: bad arguments, alone, sets, 16 live, owners" t_space
	step "unknown ioctl, STATS and SYNC on a directory, fsyncs counted" t_misc
	step "unprivileged: EACCES on an unreadable source, EPERM onto an unwritable file" t_unprivileged
	step "SYNC, kill -9, remount: the data is there" t_sync_kill
	step "STATS after cp: shared; -o noreflink: copied" t_stats_cp
	step "read-only mount: EROFS for clone and dedupe, the rest works" t_read_only
fi
step umount-fsck t_umount_fsck
step "after an abort: SYNC is EIO, CLONE_RANGE EROFS" t_abort
step "-s: clones onto a file being read do not hang" t_single_thread_reader
lib_summary
