#!/bin/sh
# Install the Debian packages cowfs needs to build, test and benchmark, if any are missing.
# Idempotent and quiet when everything is present: `make check` calls it on every run.
set -eu

# groff-base: test_tools.sh renders the man pages and checks groff has nothing to warn about.
# xfsprogs (xfs_io, mkfs.xfs), e2fsprogs (filefrag) and duperemove: the sharing tests run them
# through the preload shim on the mount and on xfs on a loop device, to compare. btrfs-progs:
# test_prealloc_statfs compares statfs, df -i and preallocation with btrfs; fio: test_fio_jobs
# runs the job files in bench/jobs.
need="gcc make pkg-config groff-base liburing-dev libfuse3-dev fuse3 libxxhash-dev check libsubunit-dev git rsync sqlite3 python3 tar util-linux xfsprogs e2fsprogs duperemove btrfs-progs fio"
# --bench: the benchmarks' peers too (bench/README.md): LMDB, fuse2fs, zfs-fuse (bench/fsbench,
# bench/snapshot), compsize (bench/share).
[ "${1:-}" = "--bench" ] && need="$need liblmdb-dev fio btrfs-progs btrfs-compsize xfsprogs fuse2fs e2fsprogs zfs-fuse"

missing=""
for p in $need; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing (run as root, or: apt-get install$missing)" >&2
	exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
