#!/usr/bin/env python3
"""The du benchmark's tree: N files in directories of 1,000, half of them 8 KiB files of their
own data and the other half clones of those (FICLONE: on cowfs through the preload shim).

    mktree.py DIR N
"""
import fcntl
import os
import sys

FICLONE = 0x40049409
PER_DIR = 1000


def main():
    top, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(top, exist_ok=True)
    for i in range(n // 2):
        d = os.path.join(top, "d%d" % (i // (PER_DIR // 2)))
        if i % (PER_DIR // 2) == 0:
            os.makedirs(d, exist_ok=True)
        src = os.path.join(d, "f%d" % i)
        with open(src, "wb") as f:
            f.write(os.urandom(8192))
        with open(src, "rb") as s, open(os.path.join(d, "c%d" % i), "wb") as c:
            fcntl.ioctl(c.fileno(), FICLONE, s.fileno())


if __name__ == "__main__":
    main()
