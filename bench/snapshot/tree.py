#!/usr/bin/env python3
"""The snapshot benchmark's source tree, and the change that gives a snapshot of it data of its own.

    tree.py create DIR FILES DIRS MAX_SIZE SEED   FILES files d<j>/f<i> in DIRS directories,
                                                  sizes uniform in 0..MAX_SIZE bytes (seeded),
                                                  contents random (nothing compresses or dedupes)
    tree.py change DIR FILES DIRS MAX_SIZE SEED   every file i % 4 == 1 overwritten in place with
                                                  new contents of the same size, every i % 4 == 3
                                                  deleted: half the files no longer match a
                                                  snapshot taken before, which then holds their
                                                  old data alone
    tree.py stat DIR FILES DIRS MAX_SIZE SEED     stat every file: all of them in the kernel's inode
                                                  cache (and a FUSE server's), as after writing
                                                  them, whatever memory pressure evicted since
Prints the bytes written (create: all data; change: overwritten + deleted data) or, for stat,
the files found.
"""
import os
import random
import sys


def path(top, i, dirs):
    return os.path.join(top, "d%d" % (i % dirs), "f%d" % i)


def sizes(files, max_size, seed):
    rng = random.Random(seed)
    return [rng.randint(0, max_size) for _ in range(files)]


def create(top, files, dirs, max_size, seed):
    for j in range(dirs):
        os.makedirs(os.path.join(top, "d%d" % j), exist_ok=True)
    total = 0
    for i, size in enumerate(sizes(files, max_size, seed)):
        with open(path(top, i, dirs), "wb") as f:
            f.write(os.urandom(size))
        total += size
    return total


def change(top, files, dirs, max_size, seed):
    total = 0
    for i, size in enumerate(sizes(files, max_size, seed)):
        if i % 4 == 1:
            with open(path(top, i, dirs), "r+b") as f:
                f.write(os.urandom(size))
            total += size
        elif i % 4 == 3:
            os.unlink(path(top, i, dirs))
            total += size
    return total


def stat_all(top, files, dirs, max_size, seed):
    found = 0
    for i in range(files):
        try:
            os.lstat(path(top, i, dirs))
            found += 1
        except FileNotFoundError:
            pass
    return found


STEPS = {"create": create, "change": change, "stat": stat_all}


def main():
    if len(sys.argv) != 7 or sys.argv[1] not in STEPS:
        sys.exit(__doc__)
    top = sys.argv[2]
    files, dirs, max_size, seed = (int(a) for a in sys.argv[3:7])
    print(STEPS[sys.argv[1]](top, files, dirs, max_size, seed))


if __name__ == "__main__":
    main()
