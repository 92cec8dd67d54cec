#!/usr/bin/env python3
"""The sharing benchmark's table from results.tsv (PEER METRIC VALUE lines; several runs of a
metric: the median). Ratios are peer / cowfs for times (>1: cowfs faster)."""
import statistics
import sys
from collections import defaultdict

PEERS = ["cowfs", "btrfs", "xfs"]


def fmt(metric, v):
    if isinstance(v, str):
        return v
    if metric.endswith("_ms"):
        return "%.1f ms" % v
    if metric.endswith("_used") or metric.endswith("_freed"):
        return "%.1f MiB" % (v / 2**20)
    if metric.endswith("_kib"):
        return "%.1f MiB" % (v / 1024)
    return str(v)


def main():
    vals = defaultdict(lambda: defaultdict(list))
    order = []
    for line in open(sys.argv[1]):
        peer, metric, value = line.rstrip("\n").split("\t", 2)
        if metric not in order:
            order.append(metric)
        try:
            vals[metric][peer].append(float(value))
        except ValueError:
            vals[metric][peer].append(value)
    print("| metric | " + " | ".join(PEERS) + " | btrfs/cowfs | xfs/cowfs |")
    print("|---|" + "---:|" * (len(PEERS) + 2))
    for m in order:
        cells, med = [], {}
        for p in PEERS:
            xs = vals[m].get(p)
            if not xs:
                cells.append("–")
                continue
            errs = [x for x in xs if isinstance(x, str)]
            if errs:
                cells.append(errs[0])
                continue
            med[p] = statistics.median(xs)
            cells.append(fmt(m, med[p]))
        ratios = []
        for p in ("btrfs", "xfs"):
            if m.endswith("_ms") and p in med and med.get("cowfs"):
                ratios.append("%.2f" % (med[p] / med["cowfs"]))
            else:
                ratios.append("")
        print("| %s | %s | %s |" % (m, " | ".join(cells), " | ".join(ratios)))


if __name__ == "__main__":
    main()
