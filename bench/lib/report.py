#!/usr/bin/env python3
"""Turns one bench/run work dir into the Markdown results page.

    report.py BENCH_DIR > results.md
"""

import datetime as dt
import glob
import json
import os
import re
import sys

BENCH = sys.argv[1]
MIB = 1 << 20
SOURCES = ["pg", "files", "sqlite", "redis"]
NAMES = {"pg": "PostgreSQL", "files": "files", "sqlite": "SQLite", "redis": "Redis"}
RESTIC_BACKUP = {
    "pg": "`pg_dump -Fc \\| restic backup --stdin`",
    "files": "`restic backup DIR`",
    "sqlite": "`sqlite3 .backup` + `restic backup --stdin`",
    "redis": "`redis-cli --rdb - \\| restic backup --stdin`",
}
RESTIC_RESTORE = {
    "pg": "`createdb` + `restic dump \\| pg_restore` + `count(*)` per table",
    "files": "`restic restore` + `mv` + file count and bytes",
    "sqlite": "`restic dump` + `PRAGMA integrity_check` + `count(*)` per table",
    "redis": "`restic dump` + restart `redis-server` on it + `DBSIZE`",
}
# Tools that are part of the measured work (not checks) in each pipeline.
HELPERS = ("pg_dump", "pg_restore", "redis-server", "redis-cli", "sqlite3", "psql")

facts = {}
with open(os.path.join(BENCH, "facts.tsv")) as f:
    for line in f:
        k, _, v = line.rstrip("\n").partition("\t")
        facts[k] = v


def m(name):
    p = os.path.join(BENCH, "m", name + ".json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def mib(kb):
    return kb / 1024


def fmt_s(x):
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def wall(name):
    """A run's wall time, marked † when other load disturbed it."""
    x = m(name)
    att = facts.get(f"attempts_{name}", "").split()
    return fmt_s(x["wall_s"]) + (" †" if len(att) > 1 and att[1] == "noisy" else "")


def ratio(a, b):
    return a / b if b else float("nan")


def verdict(ok):
    return "yes" if ok else "**no**"


def rss(meas, main):
    """(main tool's peak RSS MiB, 'helper N' text)."""
    by = meas["hwm_by_comm_kb"]
    own = mib(by.get(main, 0))
    helpers = sorted(
        ((mib(v), k) for k, v in by.items() if k in HELPERS and v > 0), reverse=True
    )
    return own, ", ".join(f"{k} {v:.0f}" for v, k in helpers)


def size(key_after, key_before):
    return int(facts[key_after]) - int(facts[key_before])


out = []
w = out.append
date = facts.get("started", "")[:10]
quick = facts.get("quick") == "1"
w(f"# drydock vs restic — {date}{' (quick run: not the reference scale)' if quick else ''}")
w("")
w(
    f"Data: PostgreSQL `pgbench -i -s {facts['scale']}` "
    f"({int(facts['pg_db_bytes']) / MIB:.0f} MiB database, {int(facts['pg_rows']):,} rows); "
    f"{int(facts['files_count']):,} files in {int(facts['files_dirs'])} directories, "
    f"{int(facts['files_bytes']) / MIB:.0f} MiB (half text-like, half random); "
    f"SQLite {int(facts['sqlite_bytes']) / MIB:.0f} MiB ({int(facts['sqlite_rows']):,} rows in 4 related tables); "
    f"Redis {int(facts['redis_keys']):,} keys ({int(facts['redis_used_memory']) / MIB:.0f} MiB used_memory)."
)
w("")
w(
    f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), {int(facts['mem_total_kb']) / MIB:.1f} GiB RAM, "
    f"disk {facts['disk']}, Linux {facts['kernel']}. Page cache: "
    + (
        "dropped before every measured run (and PostgreSQL restarted before each PostgreSQL backup)."
        if facts.get("caches") == "cold"
        else "**warm** for every run (the kernel refused to drop it)."
    )
)
w(
    f"Versions: drydock {facts['drydock_version']} (git {facts['drydock_rev']}, rustc {facts['rustc_version']}), "
    f"restic {facts['restic_version']} ({facts['restic_compression']}), PostgreSQL {facts['postgres_version']}, "
    f"Redis {facts['redis_version']}, SQLite {facts['sqlite_version']}."
)
attempts = {k[9:]: v.split() for k, v in facts.items() if k.startswith("attempts_")}
if attempts:
    repeated = sorted(k for k, v in attempts.items() if int(v[0]) > 1)
    noisy = sorted(k for k, v in attempts.items() if v[1] == "noisy")
    w("")
    w(
        "Other load: this machine is shared. Before each measured run the harness waited for it to be "
        "idle, and a run during which other processes still used more than 0.2 CPU-s + 5% of "
        f"{facts['nproc']} CPUs × wall was thrown away and measured again (a backup on a "
        f"copy of the repository as it was before). {len(attempts)} runs"
        + (f"; repeated: {', '.join(repeated)}" if repeated else "; none needed a repeat")
        + (f"; **still disturbed after the last repeat (marked †): {', '.join(noisy)}**." if noisy else "; every figure below is from an undisturbed run.")
    )
w("")

# ---------------------------------------------------------------- backup
w("## Backup")
w("")
w("Wall time of the whole command (drydock: `drydock backup --service S`, which also counts and "
  "fingerprints; restic: the pipeline in the last column), repository growth (`du -sb` before/after), "
  "peak RSS (VmHWM) of drydock / restic themselves, and of the dump tools they run.")
w("")
w("| source | drydock s | restic s | ratio | drydock MiB stored | restic MiB stored | ratio | drydock RSS MiB (helpers) | restic RSS MiB (dump tool) | restic pipeline |")
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
tot = {"dd_s": 0, "rs_s": 0, "dd_b": 0, "rs_b": 0}
max_dd_rss = 0
prev_dd, prev_rs = "repo_base_drydock", "repo_base_restic"
backup_rows = {}
for s in SOURCES:
    d, r = m(f"dd-backup-{s}"), m(f"rs-backup-{s}")
    if not d or not r:
        continue
    db = size(f"repo_after_dd_{s}", prev_dd)
    rb = size(f"repo_after_rs_{s}", prev_rs)
    prev_dd, prev_rs = f"repo_after_dd_{s}", f"repo_after_rs_{s}"
    d_rss, d_help = rss(d, "drydock")
    r_rss, r_help = rss(r, "restic")
    max_dd_rss = max(max_dd_rss, d_rss)
    tot["dd_s"] += d["wall_s"]
    tot["rs_s"] += r["wall_s"]
    tot["dd_b"] += db
    tot["rs_b"] += rb
    backup_rows[s] = (d, r, db, rb)
    w(
        f"| {NAMES[s]} | {wall(f'dd-backup-{s}')} | {wall(f'rs-backup-{s}')} | {ratio(d['wall_s'], r['wall_s']):.2f} "
        f"| {db / MIB:.2f} | {rb / MIB:.2f} | {ratio(db, rb):.3f} "
        f"| {d_rss:.0f}{f' ({d_help})' if d_help else ''} | {r_rss:.0f}{f' ({r_help})' if r_help else ''} | {RESTIC_BACKUP[s]} |"
    )
w(
    f"| **all four** | **{fmt_s(tot['dd_s'])}** | **{fmt_s(tot['rs_s'])}** | **{ratio(tot['dd_s'], tot['rs_s']):.2f}** "
    f"| **{tot['dd_b'] / MIB:.1f}** | **{tot['rs_b'] / MIB:.1f}** | **{ratio(tot['dd_b'], tot['rs_b']):.3f}** | max {max_dd_rss:.0f} | | |"
)
w("")

# ---------------------------------------------------------------- restore
w("## Restore to verified")
w("")
w("After the data is destroyed (database dropped, directory or file deleted, `FLUSHALL`): "
  "`drydock restore latest --service S --force` (restores, then re-counts and re-fingerprints "
  "and compares with the manifest) vs the restic steps in the last column, checks included.")
w("")
w("| source | drydock s | restic s | ratio | drydock RSS MiB (helpers) | restic RSS MiB (helpers) | restic steps |")
w("|---|---:|---:|---:|---:|---:|---|")
rt = {"dd": 0, "rs": 0}
max_dd_rss_r = 0
for s in SOURCES:
    d, r = m(f"dd-restore-{s}"), m(f"rs-restore-{s}")
    if not d or not r:
        continue
    d_rss, d_help = rss(d, "drydock")
    r_rss, r_help = rss(r, "restic")
    max_dd_rss_r = max(max_dd_rss_r, d_rss)
    rt["dd"] += d["wall_s"]
    rt["rs"] += r["wall_s"]
    w(
        f"| {NAMES[s]} | {wall(f'dd-restore-{s}')} | {wall(f'rs-restore-{s}')} | {ratio(d['wall_s'], r['wall_s']):.2f} "
        f"| {d_rss:.0f}{f' ({d_help})' if d_help else ''} | {r_rss:.0f}{f' ({r_help})' if r_help else ''} | {RESTIC_RESTORE[s]} |"
    )
w(f"| **all four** | **{fmt_s(rt['dd'])}** | **{fmt_s(rt['rs'])}** | **{ratio(rt['dd'], rt['rs']):.2f}** | max {max_dd_rss_r:.0f} | | |")
w("")

# ---------------------------------------------------------------- targets
w("## Targets")
w("")
b_ratio = ratio(tot["dd_s"], tot["rs_s"])
s_ratio = ratio(tot["dd_b"], tot["rs_b"])
r_ratio = ratio(rt["dd"], rt["rs"])
peak = max(max_dd_rss, max_dd_rss_r)
w("| target | figure | met |")
w("|---|---:|---|")
w(f"| backup wall time ≤ 0.8× restic (all four sources) | {b_ratio:.2f}× | {verdict(b_ratio <= 0.8)} |")
per = [f"{NAMES[s]} {ratio(v[0]['wall_s'], v[1]['wall_s']):.2f}×" for s, v in backup_rows.items()]
w(f"| … per source | {', '.join(per)} | {verdict(all(ratio(v[0]['wall_s'], v[1]['wall_s']) <= 0.8 for v in backup_rows.values()))} |")
w(f"| repository size ≤ restic's | {s_ratio:.3f}× | {verdict(s_ratio <= 1.0)} |")
w(f"| drydock peak RSS ≤ 256 MiB (process itself) | {peak:.0f} MiB | {verdict(peak <= 256)} |")
w(f"| restore-to-verified ≤ 0.7× restic (all four sources) | {r_ratio:.2f}× | {verdict(r_ratio <= 0.7)} |")
per = []
for s in SOURCES:
    d, r = m(f"dd-restore-{s}"), m(f"rs-restore-{s}")
    if d and r:
        per.append(f"{NAMES[s]} {ratio(d['wall_s'], r['wall_s']):.2f}×")
w(f"| … per source | {', '.join(per)} | |")
w("")

# ---------------------------------------------------------------- drill
dd_drill, rs_drill = m("dd-drill"), m("rs-drill")
if dd_drill and rs_drill:
    w("## Drill: recovery proven without touching production (RTO)")
    w("")
    w("`drydock drill pg files sqlite redis --use-backup latest` (every source restored from the "
      "latest backup into a sandbox: throwaway database, throwaway redis-server, scratch paths; "
      "counts and fingerprints verified against the manifest; sandboxes removed; sources of one "
      "priority in parallel) against the scripted restic pipeline for the same proof: `createdb` "
      "scratch + `restic dump | pg_restore` + `count(*)` per table compared; `restic restore` to a "
      "scratch dir + file count and bytes compared; `restic dump` of the SQLite file + "
      "`integrity_check` + `count(*)` per table; `restic dump` of the RDB into a throwaway "
      "`redis-server` + `DBSIZE`; cleanup. Both whole runs, wall time.")
    w("")
    d_rss, d_help = rss(dd_drill, "drydock")
    r_rss, r_help = rss(rs_drill, "restic")
    w("| | drydock s | restic pipeline s | ratio | drydock RSS MiB (helpers) | restic RSS MiB (helpers) |")
    w("|---|---:|---:|---:|---:|---:|")
    w(f"| whole stack, restore to verified in sandboxes | {wall('dd-drill')} | {wall('rs-drill')} | "
      f"{ratio(dd_drill['wall_s'], rs_drill['wall_s']):.2f} | {d_rss:.0f}{f' ({d_help})' if d_help else ''} "
      f"| {r_rss:.0f}{f' ({r_help})' if r_help else ''} |")
    rep = os.path.join(BENCH, "logs", "dd-drill-report.json")
    if os.path.exists(rep):
        j = json.load(open(rep))
        per = ", ".join(f"{s['service']}/{s['source']} {s['rto_ms'] / 1000:.1f} s"
                        for s in j.get("sources", []) if s.get("rto_ms") is not None)
        w("")
        w(f"drydock's own report: stack RTO {j['rto_ms'] / 1000:.1f} s (first restore start to last "
          f"verification), per source: {per}.")
    w("")

# ---------------------------------------------------------------- remote copy
dd_sync, rs_copy = m("dd-sync"), m("rs-copy")
if dd_sync and rs_copy:
    w("## Remote copy (S3: Garage on loopback)")
    w("")
    w(
        f"Every backup above (all sources, plus each side's warm-up backup) copied from the "
        f"local repository into a bucket of a single-node Garage ({facts.get('garage_version', 'garage')}): "
        "`drydock sync` (copies, then reads the copy back: index, pack list, trees, manifests) vs "
        "`restic copy --from-repo` into a repository made with `restic init --copy-chunker-params`. "
        "Then each source destroyed and restored from the remote copy only: "
        "`drydock restore latest --service S --force --from offsite` vs the restic steps of the "
        "restore table pointed at the S3 repository (restic keeps its cache; drydock has none)."
    )
    w("")
    dd_bytes = int(facts.get("remote_bytes_drydock", 0))
    rs_bytes = int(facts.get("remote_bytes_total", 0)) - dd_bytes
    d_rss, _ = rss(dd_sync, "drydock")
    r_rss, _ = rss(rs_copy, "restic")
    w("| | drydock s | restic s | ratio | drydock MiB in the bucket | restic MiB in the bucket | drydock RSS MiB | restic RSS MiB |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    w(
        f"| sync / copy | {wall('dd-sync')} | {wall('rs-copy')} | {ratio(dd_sync['wall_s'], rs_copy['wall_s']):.2f} "
        f"| {dd_bytes / MIB:.1f} | {rs_bytes / MIB:.1f} | {d_rss:.0f} | {r_rss:.0f} |"
    )
    rr = {"dd": 0, "rs": 0}
    for s in SOURCES:
        d, r = m(f"dd-restore-remote-{s}"), m(f"rs-restore-remote-{s}")
        if not d or not r:
            continue
        rr["dd"] += d["wall_s"]
        rr["rs"] += r["wall_s"]
        d_rss, _ = rss(d, "drydock")
        r_rss, _ = rss(r, "restic")
        w(
            f"| restore {NAMES[s]} from the remote, to verified | {wall(f'dd-restore-remote-{s}')} | {wall(f'rs-restore-remote-{s}')} "
            f"| {ratio(d['wall_s'], r['wall_s']):.2f} | | | {d_rss:.0f} | {r_rss:.0f} |"
        )
    w(f"| **restore all four from the remote** | **{fmt_s(rr['dd'])}** | **{fmt_s(rr['rs'])}** | **{ratio(rr['dd'], rr['rs']):.2f}** | | | | |")
    w("")

# ---------------------------------------------------------------- CPU
w("## CPU seconds")
w("")
w("`own`: user + sys of the command and every process it waited for (drydock's throwaway "
  "redis-server included); `srv`: the benchmark's PostgreSQL and Redis servers meanwhile (the "
  "backend running `COPY` or drydock's fingerprint query, the live Redis forking its RDB or "
  "applying RESTOREs); `other`: every other process on the machine meanwhile (noise). "
  f"{facts['nproc']} × wall time is the most there is.")
w("")
w("| source (own / srv / other) | drydock backup | restic backup | drydock restore | restic restore |")
w("|---|---:|---:|---:|---:|")
for s in SOURCES:
    vals = []
    for n in (f"dd-backup-{s}", f"rs-backup-{s}", f"dd-restore-{s}", f"rs-restore-{s}"):
        x = m(n)
        vals.append(
            f"{x['user_s'] + x['sys_s'] + x.get('left_running_cpu_s', 0):.1f} / {x.get('servers_cpu_s', float('nan')):.1f} / {x.get('foreign_cpu_s', float('nan')):.1f}"
            if x else "–")
    w(f"| {NAMES[s]} | " + " | ".join(vals) + " |")
w("")

# ---------------------------------------------------------------- drydock timeline
def timeline(path, wall):
    """drydock's own steps with their durations, from a -v --log-format json log.

    Keeps drydock's messages (no `log.target`: its steps and each source's end) and
    rustic's "backing up..." / "restoring file contents...". Each step lasts until the
    next kept line (the last one until the log's end). What comes before the first log
    line (process start, config, scrypt key derivation) is wall time minus the log's
    span."""
    evs = []
    if not os.path.exists(path):
        return []
    with open(path) as f:
        for line in f:
            try:
                j = json.loads(line)
            except ValueError:
                continue
            fields = j.get("fields", {})
            mt = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?", j.get("timestamp", ""))
            if not mt:
                continue
            t = dt.datetime.fromisoformat(mt[1]).timestamp() + float("0." + (mt[2] or "0"))
            msg = fields.get("message", "")
            own = "log.target" not in fields
            if "source" in fields:
                msg = f"source done ({msg})"
            evs.append((t, msg, own or msg in ("backing up...", "restoring file contents...")))
    if not evs:
        return []
    t0, tend = evs[0][0], evs[-1][0]
    kept = [(t, msg) for t, msg, keep in evs if keep]
    out = [("start, config, key derivation", max(0.0, wall - (tend - t0)))]
    if kept:
        out.append(("(until the first step)", kept[0][0] - t0))
    for i, (t, msg) in enumerate(kept):
        nxt = kept[i + 1][0] if i + 1 < len(kept) else tend
        if msg.startswith("source done"):
            msg = "manifest"
        elif msg in ("backing up...", "restoring file contents..."):
            msg = "rustic: " + msg.rstrip(".")
        out.append((msg, nxt - t))
    return out


def short(msg):
    msg = msg.replace("\n", " ")
    return msg if len(msg) <= 90 else msg[:87] + "..."


w("## drydock's steps (from its `-v --log-format json` log)")
w("")
w("Each step lasts until the next one; steps under 0.05 s are left out. \"(until the first step)\" "
  "is opening the repository and then any work that logs no step of its own (the SQLite copy, "
  "integrity check and fingerprint; `pg_restore`; reading manifests). \"manifest\" is everything "
  "after the source finished (storing the manifest, exit).")
w("")
for kind in ("backup", "restore"):
    for s in SOURCES:
        meas = m(f"dd-{kind}-{s}")
        tl = timeline(os.path.join(BENCH, "logs", f"dd-{kind}-{s}.log"), meas["wall_s"] if meas else 0)
        if not tl:
            continue
        w(f"- **{kind} {NAMES[s]}** ({fmt_s(meas['wall_s'])} s): " + "; ".join(f"{short(msg)} {sec:.1f} s" for msg, sec in tl if sec >= 0.05))
w("")

# ---------------------------------------------------------------- phases
ph = {os.path.basename(p)[3:-5]: json.load(open(p)) for p in glob.glob(os.path.join(BENCH, "m", "ph-*.json"))}
if ph:
    w("## Phase breakdown (each measured alone, cold cache)")
    w("")
    w("The `drydock verify --live` rows include drydock's start-up (the `drydock-open` row).")
    w("")
    w("| phase | wall s | CPU s (client side) | what it is |")
    w("|---|---:|---:|---|")
    desc = [
        ("drydock-open", "`drydock backups`: process start, config, scrypt key derivation, reading the manifests"),
        ("pg-dump", "`pg_dump -Fc > file` alone"),
        ("pg-fingerprint", "drydock's PostgreSQL counts + fingerprint alone (`drydock verify --live`)"),
        ("pg-restore", "`pg_restore --single-transaction` from a local file alone"),
        ("files-read", "reading every file once (`cat`)"),
        ("files-sha256", "SHA-256 of every file (`sha256sum`, one core)"),
        ("files-fingerprint", "drydock's walk + SHA-256 of every file (`drydock verify --live`)"),
        ("sqlite-backup", "`sqlite3 .backup` alone"),
        ("sqlite-fingerprint", "drydock's SQLite counts + fingerprint alone (`drydock verify --live`)"),
        ("sqlite-integrity", "`PRAGMA integrity_check` alone (sqlite3 CLI, default 2 MiB page cache)"),
        ("sqlite-quick-check", "`PRAGMA quick_check` alone (skips checking indexes against their tables)"),
        ("redis-rdb", "`redis-cli --rdb file` alone"),
        ("redis-load", "starting a redis-server on that RDB until it answers"),
        ("redis-fingerprint", "drydock's Redis fingerprint of the live server (`drydock verify --live`)"),
    ]
    for k, text in desc:
        if k in ph:
            x = ph[k]
            w(f"| {k} | {wall('ph-' + k)} | {x['user_s'] + x['sys_s']:.1f} | {text} |")
    w("")

w("Raw measurements: `m/*.json` in the work dir (wall, exit code, `ru_maxrss` of the tree as "
  "GNU time's `%M` reports it, VmHWM per process name, CPU), logs in `logs/`.")
print("\n".join(out))
