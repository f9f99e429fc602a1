#!/usr/bin/env python3
"""Waits until the machine is quiet: the whole machine's CPU use stays under
THRESHOLD (fraction of all CPUs) for three 1-second samples in a row.

    wait_quiet.py MAX_SECONDS [THRESHOLD]

Prints the seconds waited. Exits 0 when quiet, 1 when MAX_SECONDS passed first (the
caller measures anyway and says so). On a shared machine (others compiling), this
keeps unrelated load out of the figures as far as it can.
"""

import sys
import time


def jiffies():
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts[:8]) - idle, idle


def main():
    limit = float(sys.argv[1])
    threshold = float(sys.argv[2]) if len(sys.argv) > 2 else 0.15
    start = time.monotonic()
    quiet = 0
    b0, i0 = jiffies()
    while True:
        time.sleep(1)
        b1, i1 = jiffies()
        total = (b1 - b0) + (i1 - i0)
        busy = (b1 - b0) / total if total else 0.0
        b0, i0 = b1, i1
        quiet = quiet + 1 if busy < threshold else 0
        waited = time.monotonic() - start
        if quiet >= 3:
            print(f"{waited:.0f}")
            return 0
        if waited >= limit:
            print(f"{waited:.0f}")
            return 1


if __name__ == "__main__":
    sys.exit(main())
