#!/usr/bin/env python3
"""Runs one command and measures it: wall time, exit code, and peak memory.

    measure.py OUT.json -- CMD [ARGS...]

Memory is measured two ways:
  - `tree_maxrss_kb`: what GNU `/usr/bin/time -f %M` prints for the command (it runs
    under time(1)): ru_maxrss from wait4(), the peak RSS of the largest single process
    in the tree (the command and every descendant it waited for);
  - per process, by sampling /proc every INTERVAL seconds: each descendant's VmHWM
    (its own peak RSS, kept by the kernel, so a sample taken any time before it exits
    sees its true peak), reported as the maximum per command name (`hwm_by_comm_kb`,
    e.g. {"drydock": ..., "pg_dump": ..., "restic": ...}), plus the peak of the
    tree's summed VmRSS at one instant (`tree_rss_sum_peak_kb`).
A process that lives shorter than one interval can be missed by the sampler; the
wait4() figure still covers it. `machine_busy_s` (from /proc/stat) shows how much CPU
the whole machine spent meanwhile: the command, the servers it talks to, and any
unrelated load that would distort the figures.

The command's stdin/stdout/stderr are inherited. Exits with the command's exit code.
"""

import json
import os
import sys
import time

INTERVAL = float(os.environ.get("MEASURE_INTERVAL", "0.1"))


def read_stat(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm is in parentheses and may contain spaces or parentheses.
    lp = data.index(b"(")
    rp = data.rindex(b")")
    comm = data[lp + 1 : rp].decode(errors="replace")
    fields = data[rp + 2 :].split()
    return comm, int(fields[1])  # state is fields[0], ppid fields[1]


def read_mem(pid):
    hwm = rss = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return hwm, rss


def cpu_jiffies():
    """(busy, idle) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    return sum(parts[:8]) - idle, idle


def descendants(root):
    children = {}
    comms = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        st = read_stat(pid)
        if st is None:
            continue
        comms[pid] = st[0]
        children.setdefault(st[1], []).append(pid)
    out = []
    todo = [root]
    while todo:
        p = todo.pop()
        if p in comms and (p != root or comms[p] != "time"):
            out.append((p, comms[p]))
        todo.extend(children.get(p, ()))
    return out


def main():
    argv = sys.argv[1:]
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: measure.py OUT.json -- CMD [ARGS...]")
    out_path, cmd = argv[0], argv[2:]
    busy0, idle0 = cpu_jiffies()
    start = time.monotonic()
    # The command runs under GNU time: a child's ru_maxrss starts at its parent's
    # high-water mark (exec records the old address space's), so only a tiny parent
    # like time(1) gives a clean %M; Python's own would add ~10 MiB.
    time_out = out_path + ".time"
    try:
        pid = os.posix_spawnp(
            "/usr/bin/time", ["/usr/bin/time", "-f", "%e %M", "-o", time_out, "--"] + cmd, os.environ
        )
    except OSError as e:
        sys.exit(f"measure.py: cannot run /usr/bin/time: {e}")
    per_pid = {}  # (pid, comm) -> hwm; a pid that execs gets a new entry
    rss_sum_peak = 0
    status = rusage = None
    while True:
        tree = descendants(pid)
        total = 0
        for p, comm in tree:
            hwm, rss = read_mem(p)
            total += rss
            per_pid[(p, comm)] = max(per_pid.get((p, comm), 0), hwm)
        rss_sum_peak = max(rss_sum_peak, total)
        wpid, status, rusage = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            break
        time.sleep(INTERVAL)
    wall = time.monotonic() - start
    busy1, idle1 = cpu_jiffies()
    hz = os.sysconf("SC_CLK_TCK")
    rc = os.waitstatus_to_exitcode(status)
    try:
        with open(time_out) as f:
            # "Command exited with non-zero status N" may come first.
            time_wall, time_maxrss = f.read().split()[-2:]
        os.unlink(time_out)
    except (OSError, ValueError):
        time_wall, time_maxrss = "nan", "0"
    by_comm = {}
    for (_, comm), hwm in per_pid.items():
        by_comm[comm] = max(by_comm.get(comm, 0), hwm)
    result = {
        "cmd": cmd,
        "rc": rc,
        "wall_s": round(wall, 3),
        "user_s": round(rusage.ru_utime, 3),
        "sys_s": round(rusage.ru_stime, 3),
        "tree_maxrss_kb": int(time_maxrss),
        "time_wall_s": float(time_wall),
        "hwm_by_comm_kb": by_comm,
        "tree_rss_sum_peak_kb": rss_sum_peak,
        # Whole machine while it ran: CPU-seconds busy (this command, the database
        # servers it talks to, and anything else running) and idle.
        "machine_busy_s": round((busy1 - busy0) / hz, 2),
        "machine_idle_s": round((idle1 - idle0) / hz, 2),
    }
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
    sys.exit(rc if rc >= 0 else 128 - rc)


if __name__ == "__main__":
    main()
