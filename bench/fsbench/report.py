#!/usr/bin/env python3
"""Parsing and reporting for bench/fsbench/run.sh (python3 standard library only).

  report.py fio FILE UNIT ERRFILE RC   value of a fio JSON result (UNIT mib_s or iops) on stdout;
                                       exit 1 with the reason on stdout if the job failed
  report.py get FILE|- KEY             KEY of a one-object JSON (fsbench-ops output); exit 1 with
                                       its "error" if it says "ok": false
  report.py table RECORDS META OUT_JSON OUT_MD
                                       medians per metric and peer, the markdown table, raw JSON
"""
import json
import os
import statistics
import sys

PEERS = ["cowfs", "btrfs", "xfs", "fuse2fs", "zfs-fuse"]

# metric, label ({size} = data file size), higher is better, format
METRICS = [
    ("seqwrite_psync", "seqwrite psync MiB/s", True, "mib"),
    ("seqwrite_uring", "seqwrite io_uring QD16 MiB/s", True, "mib"),
    ("seqread", "seqread cold MiB/s", True, "mib"),
    ("randread_buf", "randread 4k buffered IOPS", True, "k"),
    ("randread_direct", "randread 4k direct IOPS", True, "k"),
    ("randwrite_buf", "randwrite 4k buffered IOPS", True, "k"),
    ("create", "create ops/s", True, "k"),
    ("stat", "stat cold ops/s", True, "k"),
    ("unlink", "unlink ops/s", True, "k"),
    ("fsync_p50", "fsync p50 us", False, "int"),
    ("fsync_p99", "fsync p99 us", False, "int"),
    ("cp", "plain cp {size} + fsync, s", False, "s"),
    ("reflink", "cp --reflink=always {size} + fsync, s", False, "s"),
]


def load_loose(path):
    """The first JSON object in a file (fio may print notes before it)."""
    text = sys.stdin.read() if path == "-" else open(path, errors="replace").read()
    i = text.find("{")
    if i < 0:
        raise ValueError("no JSON output")
    obj, _ = json.JSONDecoder().raw_decode(text[i:])
    return obj


def last_line(path):
    try:
        lines = [l.strip() for l in open(path, errors="replace") if l.strip()]
    except OSError:
        return ""
    # fio's own complaints start with "fio:"; prefer the last one
    fio_lines = [l for l in lines if l.startswith("fio:") or "err=" in l]
    return (fio_lines or lines or [""])[-1]


def cmd_fio(path, unit, errfile, rc):
    rc = int(rc)
    try:
        job = load_loose(path)["jobs"][0]
    except (OSError, ValueError, KeyError, IndexError) as e:
        msg = last_line(errfile) or str(e)
        print(f"fio failed (exit {rc}): {msg}" if rc else f"fio output unreadable: {msg}")
        return 1
    err = job.get("error", 0)
    if err or rc:
        msg = last_line(errfile)
        if not msg and err:
            msg = f"{os.strerror(err)} (errno {err})"
        print(f"fio failed (exit {rc}, error {err}): {msg}")
        return 1
    ddir = "write" if job["write"]["io_bytes"] > 0 else "read"
    d = job[ddir]
    if d["io_bytes"] <= 0:
        print("fio did no I/O")
        return 1
    val = d["bw_bytes"] / 2**20 if unit == "mib_s" else d["iops"]
    print(f"{val:.3f}")
    return 0


def cmd_get(path, key):
    try:
        obj = load_loose(path)
    except (OSError, ValueError) as e:
        print(f"unreadable result: {e}")
        return 1
    if not obj.get("ok", False):
        print(obj.get("error", "failed"))
        return 1
    print(obj[key])
    return 0


def fmt(v, kind):
    if kind == "mib":
        return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
    if kind == "k":
        return f"{v / 1000:.1f}k" if v >= 1000 else f"{v:.0f}"
    if kind == "int":
        return f"{v:,.0f}"
    if kind == "s":
        return f"{v:.3f}" if v < 10 else f"{v:.1f}"
    return str(v)


def human_size(b):
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if b >= 1 << shift and b % (1 << shift) == 0:
            return f"{b >> shift} {unit}"
    return f"{b} B"


def short(msg, n=90):
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def is_unsupported(msg):
    m = msg.lower()
    return any(s in m for s in ("not supported", "invalid argument", "failed to clone",
                                "inappropriate ioctl", "cross-device"))


def cmd_table(records_path, meta_path, out_json, out_md):
    meta = json.load(open(meta_path))
    records = [json.loads(l) for l in open(records_path) if l.strip()]
    peers = [p for p in PEERS if p in meta["peers"].split()]
    steps = meta["steps"].split()
    step_metrics = {
        "seqwrite-psync": ["seqwrite_psync"], "seqwrite-uring": ["seqwrite_uring"],
        "seqread": ["seqread"], "randread-buf": ["randread_buf"],
        "randread-direct": ["randread_direct"], "randwrite": ["randwrite_buf"],
        "meta": ["create", "stat", "unlink"], "fsync": ["fsync_p50", "fsync_p99"],
        "cp": ["cp"], "reflink": ["reflink"],
    }
    wanted = {m for s in steps for m in step_metrics.get(s, [])}
    metrics = [m for m in METRICS if m[0] in wanted]

    status = {p: ("ok", "") for p in peers}
    for r in records:
        if r["kind"] == "peer":
            status[r["peer"]] = (r["status"], r["note"])

    values, errors, rss = {}, {}, {}
    for r in records:
        key = (r.get("metric"), r["peer"])
        if r["kind"] == "value":
            values.setdefault(key, []).append(r["value"])
        elif r["kind"] == "error":
            errors.setdefault(key, []).append(r["error"])
        elif r["kind"] == "rss":
            rss.setdefault(r["peer"], []).append(r)

    notes, note_index = [], {}

    def footnote(text):
        if text not in note_index:
            notes.append(text)
            note_index[text] = len(notes)
        return f"[{note_index[text]}]"

    medians, cells = {}, {}
    for mid, _label, _hb, kind in metrics:
        medians[mid] = {}
        for p in peers:
            vals = values.get((mid, p), [])
            errs = errors.get((mid, p), [])
            if status[p][0] != "ok":
                cells[(mid, p)] = "n/a"
                medians[mid][p] = {"status": "n/a", "reason": status[p][1]}
            elif vals:
                med = statistics.median(vals)
                cell = fmt(med, kind)
                if errs:
                    cell += " " + footnote(f"{p} {mid}: {len(errs)} of {len(vals) + len(errs)} runs failed: {short(errs[0])}")
                cells[(mid, p)] = cell
                medians[mid][p] = {"median": med, "min": min(vals), "max": max(vals),
                                   "values": vals, "errors": errs}
            elif errs:
                if mid == "reflink" and all(is_unsupported(e) for e in errs):
                    cells[(mid, p)] = "fails"
                else:
                    cells[(mid, p)] = "error " + footnote(f"{p} {mid}: {short(errs[0], 200)}")
                medians[mid][p] = {"status": "error", "errors": errs}
            else:
                cells[(mid, p)] = "—"
                medians[mid][p] = {"status": "not run"}

    def ratio(mid, hb, p):
        c = medians[mid].get("cowfs", {})
        q = medians[mid].get(p, {})
        if "median" not in c or "median" not in q:
            if "median" in c and q.get("status") == "error" and cells[(mid, p)] == "fails":
                return "cowfs only"
            return "—"
        a, b = c["median"], q["median"]
        if a <= 0 or b <= 0:
            return "—"
        return f"{(a / b) if hb else (b / a):.2f}"

    others = [p for p in peers if p != "cowfs"]
    with_ratio = "cowfs" in peers and status["cowfs"][0] == "ok" and others
    size = human_size(meta["size_bytes"])
    head = ["workload"] + peers + ([f"cowfs vs {p}" for p in others] if with_ratio else [])
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for mid, label, hb, _kind in metrics:
        row = [label.format(size=size)] + [cells[(mid, p)] for p in peers]
        if with_ratio:
            row += [ratio(mid, hb, p) for p in others]
        lines.append("| " + " | ".join(row) + " |")

    # Daemon memory: VmHWM of the FUSE daemons, max over every daemon instance of the run.
    peak = {}
    for p in peers:
        rs = rss.get(p, [])
        if rs:
            best = max(rs, key=lambda r: r["hwm_kib"])
            peak[p] = {"hwm_mib": best["hwm_kib"] / 1024, "step": best["step"],
                       "instances": len({r["pid"] for r in rs}), "samples": len(rs)}
    if any(p in peak for p in peers):
        row = ["daemon peak RSS MiB (VmHWM)"]
        for p in peers:
            if status[p][0] != "ok":
                row.append("n/a")
            elif p in ("btrfs", "xfs"):
                row.append("kernel")
            elif p in peak:
                row.append(f"{peak[p]['hwm_mib']:.0f}")
            else:
                row.append("—")
        if with_ratio:
            row += ["—"] * len(others)
        lines.append("| " + " | ".join(row) + " |")

    out = []
    out.append(f"fsbench {meta['date']}: {meta['cores']} cores, {meta['mem_mib'] // 1024} GiB, "
               f"Linux {meta['kernel']}, {meta['fio']}, coreutils {meta['coreutils']}, "
               f"cowfs {meta['cowfs_rev']}; data file {size}, random I/O {meta['runtime_s']} s, "
               f"{meta['files']:,} files, {meta['fsyncs']:,} fsyncs, {meta['image_size']} images; "
               f"median of {meta['runs']} run(s), peers interleaved"
               + (" (QUICK MODE: smoke test, not a measurement)" if meta.get("quick") else "") + ".")
    out.append("")
    if with_ratio:
        out.append("Ratio columns: >1 means cowfs is better (throughput: cowfs / peer; "
                   "latency and seconds: peer / cowfs).")
        out.append("")
    out += lines
    out.append("")
    if "cowfs" in peers and status["cowfs"][0] == "ok":
        if "cowfs" in peak:
            pk = peak["cowfs"]
            cache = meta["cowfs_cache_mib"]
            out.append(f"cowfs daemon peak RSS: {pk['hwm_mib']:.0f} MiB = {pk['hwm_mib'] / cache:.2f} x "
                       f"its configured cache of {cache} MiB (max VmHWM over {pk['instances']} daemon "
                       f"instances, one per mount; highest sampled {pk['step']}; "
                       f"-o {meta['cowfs_opts'] or '(none)'}).")
        else:
            out.append("cowfs daemon peak RSS: not sampled (no cowfs daemon found by image path).")
        if meta.get("cowfs_fsck"):
            out.append(f"fsck.cowfs on the image after the run: {meta['cowfs_fsck']}.")
    for p in peers:
        if status[p][0] != "ok":
            out.append(f"- {p}: n/a ({status[p][1]})")
    for i, n in enumerate(notes, 1):
        out.append(f"- [{i}] {n}")
    out.append("- Cold before every timed step, for every peer: sync, unmount (FUSE: wait for the "
               "daemon to exit; zfs-fuse: zpool export), echo 3 > /proc/sys/vm/drop_caches, mount "
               "again (zfs-fuse: zpool import).")
    md = "\n".join(out) + "\n"
    open(out_md, "w").write(md)
    json.dump({"meta": meta, "peers": {p: {"status": status[p][0], "reason": status[p][1]} for p in peers},
               "medians": medians, "daemon_peak_rss": peak, "records": records},
              open(out_json, "w"), indent=1)
    return 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "fio" and len(argv) == 6:
        return cmd_fio(*argv[2:])
    if len(argv) >= 2 and argv[1] == "get" and len(argv) == 4:
        return cmd_get(*argv[2:])
    if len(argv) >= 2 and argv[1] == "table" and len(argv) == 6:
        return cmd_table(*argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
