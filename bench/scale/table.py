"""The scaling report of bench/scale/run: per size, backup and restore wall time of
PostgreSQL and files for drydock and restic, their ratio, and seconds per GiB (a
straight line keeps seconds per GiB flat)."""

import json
import os
import sys

work, sizes = sys.argv[1], sys.argv[2:]
STEPS = [("pg", "PostgreSQL"), ("files", "files")]


def wall(size, name):
    path = os.path.join(work, f"m-{size}", f"{name}.json")
    try:
        with open(path) as f:
            return json.load(f)["wall_s"]
    except (OSError, KeyError, ValueError):
        return None


def facts(size):
    out = {}
    with open(os.path.join(work, f"facts-{size}.tsv")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            out[k] = v
    return out


def cell(v):
    return "—" if v is None else f"{v:.2f}"


def ratio(a, b):
    return "—" if a is None or not b else f"{a / b:.2f}"


first = facts(sizes[0])
print("# How cost grows: PostgreSQL and files at several sizes\n")
print(f"drydock {first.get('drydock_rev', '?')}, restic {first.get('restic_version', '?')}, "
      f"PostgreSQL {first.get('postgres_version', '?')}; {first.get('nproc', '?')} cores; "
      "page cache dropped before every run; one run per size (bench/run, no remote, no drill).\n")
for op in ("backup", "restore"):
    print(f"## {op.capitalize()}\n")
    print("| size GiB | source | data | drydock s | restic s | drydock / restic | drydock s/GiB | restic s/GiB |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    for size in sizes:
        fs = facts(size)
        data = {
            "pg": f"pgbench -s {fs.get('scale', '?')}",
            "files": f"{fs.get('files_mb', '?')} MiB of files",
        }
        for key, name in STEPS:
            dd, rs = wall(size, f"dd-{op}-{key}"), wall(size, f"rs-{op}-{key}")
            g = float(size)
            per = lambda v: None if v is None else v / g
            print(f"| {size} | {name} | {data[key]} | {cell(dd)} | {cell(rs)} | {ratio(dd, rs)} "
                  f"| {cell(per(dd))} | {cell(per(rs))} |")
    print()
