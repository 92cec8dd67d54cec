#!/usr/bin/env python3
"""The snapshot benchmark's table from results.tsv (PEER METRIC VALUE lines; a metric measured
several times: the median, with the range). Ratios are peer / cowfs for times (above 1: cowfs
is faster); then the issue's goals, each met or not.

    report.py RESULTS.tsv REPS FILES [RUNS]
"""
import statistics
import sys
from collections import defaultdict

PEERS = ["cowfs", "btrfs", "zfs-fuse"]
NOT_AVAILABLE = "cowfs: not available"


def load(path):
    vals = defaultdict(lambda: defaultdict(list))
    for line in open(path):
        peer, metric, value = line.rstrip("\n").split("\t", 2)
        try:
            vals[metric][peer].append(float(value))
        except ValueError:
            vals[metric][peer].append(value)
    return vals


class Figures:
    def __init__(self, vals):
        self.vals = vals

    def raw(self, metric, peer):
        return self.vals.get(metric, {}).get(peer, [])

    def text(self, metric, peer):
        """The first non-number recorded (an error, "not available"), else None."""
        for x in self.raw(metric, peer):
            if isinstance(x, str):
                return x
        return None

    def median(self, metric, peer):
        xs = self.raw(metric, peer)
        if not xs or self.text(metric, peer) is not None:
            return None
        return statistics.median(xs)

    def cell(self, metric, peer, fmt):
        t = self.text(metric, peer)
        if t is not None:
            return t
        xs = self.raw(metric, peer)
        if not xs:
            err = self.text("error", peer)
            return "error: " + err if err else "–"
        s = fmt(statistics.median(xs))
        if len(xs) > 1 and fmt is ms:
            s += " (%s-%s)" % (fmt(min(xs)).split()[0], fmt(max(xs)).split()[0])
        return s


def ms(v):
    return "%.1f ms" % v


def mib_bytes(v):
    return "%.1f MiB (%d)" % (v / 2**20, v)


def ratio_cells(fig, metric):
    cowfs = fig.median(metric, "cowfs")
    out = []
    for p in ("btrfs", "zfs-fuse"):
        v = fig.median(metric, p)
        out.append("%.2f" % (v / cowfs) if v is not None and cowfs else "")
    return out


def table(fig, reps, files, runs):
    each = "median of %d" % (reps * runs)
    rows = [
        ("(a) snapshot, empty subvolume (%s)" % each, "snap_empty_ms", ms, True),
        ("(b) snapshot, %s files (%s)" % (format(files, ","), each), "snap_full_ms", ms, True),
        ("(c) delete, until the space is back", "del_ms", ms, True),
        ("(c) of which the delete (+ wait for the drop) command", "del_cmd_ms", ms, True),
        ("(c) space freed", "del_freed", mib_bytes, False),
        ("(d) exclusive bytes, warm", "excl_ms", ms, True),
        ("(d) exclusive bytes, cold mount", "excl_cold_ms", ms, True),
        ("(d) `cowfs subvolume list -s`, warm", "excl_list_ms", ms, False),
        ("(d) exclusive bytes reported", "excl_bytes", mib_bytes, False),
    ]
    print("| case | " + " | ".join(PEERS) + " | btrfs/cowfs | zfs-fuse/cowfs |")
    print("|---|" + "---:|" * (len(PEERS) + 2))
    for label, metric, fmt, ratios in rows:
        cells = [fig.cell(metric, p, fmt) for p in PEERS]
        r = ratio_cells(fig, metric) if ratios else ["", ""]
        print("| %s | %s | %s |" % (label, " | ".join(cells), " | ".join(r)))
    cells = []
    for p in PEERS:
        a, b = fig.median("snap_empty_ms", p), fig.median("snap_full_ms", p)
        cells.append("%.2f" % (b / a) if a and b is not None else (fig.text("snap_full_ms", p) or "–"))
    print("| (b) / (a) | %s | | |" % " | ".join(cells))
    cells = []
    for p in PEERS:
        e, f = fig.median("excl_bytes", p), fig.median("del_freed", p)
        if e is None or f is None:
            cells.append(fig.text("excl_bytes", p) or "–")
        else:
            cells.append("%+d (%+.2f%%)" % (e - f, 100.0 * (e - f) / f if f else 0.0))
    print("| (d) reported - (c) freed, bytes | %s | | |" % " | ".join(cells))
    e, r = fig.median("excl_cold_bytes", "cowfs"), fig.median("excl_recount", "cowfs")
    if r is not None and e is not None:
        print("| (d) reported - recount (`cowfs dump --subvol-space`), bytes | %+d | | | | |" % (e - r))
    elif fig.text("excl_recount", "cowfs"):
        print("| (d) reported - recount (`cowfs dump --subvol-space`), bytes | %s | | | | |"
              % fig.text("excl_recount", "cowfs"))


def verdict(ok):
    return "met" if ok else "**not met**"


def goals(fig, files):
    c = lambda m: fig.median(m, "cowfs")
    b = lambda m: fig.median(m, "btrfs")
    print()
    print("Goals (issue 13):")
    if c("snap_empty_ms") is None:
        why = fig.text("snap_empty_ms", "cowfs") or fig.text("error", "cowfs") or "no cowfs figures"
        print("- not measured: %s" % why)
        return
    lines = []
    if b("snap_empty_ms") and b("snap_full_ms") and c("snap_full_ms") is not None:
        re_, rf = c("snap_empty_ms") / b("snap_empty_ms"), c("snap_full_ms") / b("snap_full_ms")
        lines.append("snapshot within 2x of btrfs: cowfs / btrfs = %.2f (empty), %.2f (%s files): %s"
                     % (re_, rf, format(files, ","), verdict(re_ <= 2 and rf <= 2)))
    if c("snap_full_ms") is not None:
        r = c("snap_full_ms") / c("snap_empty_ms")
        lines.append("%s-file snapshot within 2x of the empty one: %.2f: %s"
                     % (format(files, ","), r, verdict(r <= 2)))
    if c("del_ms") and b("del_ms"):
        r = b("del_ms") / c("del_ms")
        lines.append("deletion at least as fast as btrfs: btrfs / cowfs = %.2f: %s" % (r, verdict(r >= 1)))
    if c("excl_ms") and b("excl_ms"):
        r, rc = b("excl_ms") / c("excl_ms"), None
        if c("excl_cold_ms") and b("excl_cold_ms"):
            rc = b("excl_cold_ms") / c("excl_cold_ms")
        cold = ", cold %.1f" % rc if rc is not None else ""
        lines.append("exclusive bytes 10x faster than a btrfs quota rescan: btrfs / cowfs = %.1f warm%s: %s"
                     % (r, cold, verdict(r >= 10 and (rc is None or rc >= 10))))
    if c("excl_bytes") is not None and c("del_freed") is not None:
        d = c("excl_bytes") - c("del_freed")
        peer = ""
        if b("excl_bytes") is not None and b("del_freed"):
            db = b("excl_bytes") - b("del_freed")
            peer = " (btrfs's qgroup figure: %+d, %+.2f%%)" % (db, 100.0 * db / b("del_freed"))
        lines.append("exclusive bytes against the space the deletion freed (statfs): %d - %d = %+d, %+.2f%%%s"
                     % (c("excl_bytes"), c("del_freed"), d, 100.0 * d / c("del_freed") if c("del_freed") else 0.0,
                        peer))
    if c("excl_cold_bytes") is not None and c("excl_recount") is not None:
        d = c("excl_cold_bytes") - c("excl_recount")
        lines.append("exclusive bytes exact (reported = the recount of `cowfs dump --subvol-space`): "
                     "%d - %d = %+d: %s" % (c("excl_cold_bytes"), c("excl_recount"), d, verdict(d == 0)))
    for line in lines:
        print("- " + line)
    fsck = fig.text("fsck", "cowfs")
    if fsck:
        print("- fsck.cowfs after the run: " + fsck)


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    fig = Figures(load(sys.argv[1]))
    reps, files = int(sys.argv[2]), int(sys.argv[3])
    runs = int(sys.argv[4]) if len(sys.argv) == 5 else 1
    table(fig, reps, files, runs)
    if runs > 1:
        print()
        print("(c) and (d): medians of %d runs, the range in brackets." % runs)
    goals(fig, files)


if __name__ == "__main__":
    main()
