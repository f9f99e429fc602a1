#!/usr/bin/env python3
"""Runs one command and measures it: wall time, exit code, peak memory, CPU, and how
much unrelated load the machine carried meanwhile.

    MEASURE_SERVER_PIDS="PID ..." measure.py OUT.json -- CMD [ARGS...]

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
wait4() figure still covers it.

CPU: `user_s`/`sys_s` are the command's and its waited-for descendants' (wait4).
`servers_cpu_s` is what the servers named in MEASURE_SERVER_PIDS (the benchmark's own
PostgreSQL and Redis, with their children) spent meanwhile. `foreign_cpu_s` is the
CPU every other user-space process on the machine spent meanwhile (kernel threads
left out): load that has nothing to do with the benchmark and distorts it. The
caller re-measures a run that had too much of it.

The command's stdin/stdout/stderr are inherited. Exits with the command's exit code.
"""

import json
import os
import sys
import time

INTERVAL = float(os.environ.get("MEASURE_INTERVAL", "0.1"))
HZ = os.sysconf("SC_CLK_TCK")


def read_stat(pid):
    """(comm, ppid, own + reaped children's CPU jiffies) or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm is in parentheses and may contain spaces or parentheses.
    lp = data.index(b"(")
    rp = data.rindex(b")")
    comm = data[lp + 1 : rp].decode(errors="replace")
    f = data[rp + 2 :].split()
    # f[0] state, f[1] ppid, f[11..14] utime stime cutime cstime
    return comm, int(f[1]), int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])


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


def snapshot():
    """pid -> (comm, ppid, cpu jiffies) for every process."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = read_stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def tree_of(snap, roots):
    children = {}
    for pid, (_, ppid, _) in snap.items():
        children.setdefault(ppid, []).append(pid)
    seen = set()
    todo = list(roots)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(children.get(p, ()))
    return seen


def ancestors(snap, pid):
    out = set()
    while pid in snap and pid not in out and pid > 1:
        out.add(pid)
        pid = snap[pid][1]
    return out


def main():
    argv = sys.argv[1:]
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: measure.py OUT.json -- CMD [ARGS...]")
    out_path, cmd = argv[0], argv[2:]
    servers = [int(p) for p in os.environ.get("MEASURE_SERVER_PIDS", "").split() if p.isdigit()]
    snap0 = snapshot()
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
    ours = {pid}  # every process seen in the command's tree
    rss_sum_peak = 0
    status = rusage = None
    while True:
        snap = snapshot()
        tree = tree_of(snap, [pid])
        ours |= tree
        total = 0
        for p in tree:
            comm = snap[p][0]
            if p == pid and comm == "time":
                continue
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
    snap1 = snapshot()
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

    # Whose CPU was it? Server trees (as they were at the start and are at the end),
    # the command's tree, this process and its ancestors (the harness) are ours;
    # kernel threads are the kernel's (writeback of our files included); the rest is
    # foreign.
    server_pids = tree_of(snap0, servers) | tree_of(snap1, servers)
    harness = ancestors(snap1, os.getpid()) | ancestors(snap0, os.getpid())
    ours_all = ours | harness

    def delta(p):
        return snap1[p][2] - (snap0[p][2] if p in snap0 and snap0[p][0] == snap1[p][0] else 0)

    servers_j = foreign_j = own_unreaped_j = 0
    for p, (comm, ppid, _) in snap1.items():
        if p == 2 or ppid == 2:
            continue
        if p in server_pids:
            servers_j += delta(p)
        elif p in ours:
            if p != pid:
                own_unreaped_j += delta(p)  # e.g. a server the command started and left running
        elif p in ours_all:
            continue
        else:
            foreign_j += delta(p)
            if os.environ.get("MEASURE_DEBUG") and delta(p) > 0:
                print(f"measure.py: foreign pid {p} ({comm}, ppid {ppid}): {delta(p) / HZ:.2f} CPU-s", file=sys.stderr)
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
        "servers_cpu_s": round(servers_j / HZ, 2),
        "left_running_cpu_s": round(own_unreaped_j / HZ, 2),
        "foreign_cpu_s": round(foreign_j / HZ, 2),
        # Whole machine while it ran (from /proc/stat), kernel threads included.
        "machine_busy_s": round((busy1 - busy0) / HZ, 2),
        "machine_idle_s": round((idle1 - idle0) / HZ, 2),
    }
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
    sys.exit(rc if rc >= 0 else 128 - rc)


if __name__ == "__main__":
    main()
