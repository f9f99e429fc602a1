#!/usr/bin/env python3
"""Generates the benchmark's file tree.

    gen_files.py DIR TOTAL_MIB [SEED]

Half of the bytes are text-like (log lines, prose, CSV built from a skewed
vocabulary: compresses roughly 3-4x, like real logs and documents), half are random
(from os.urandom: incompressible, like photos or archives). Sizes are log-uniform,
so there are many small files and a few large ones; a few thousand files per GiB in
nested directories. The layout and the text are deterministic for a given SEED; the
random half is not (its statistics are).
"""

import math
import os
import random
import sys

MIB = 1 << 20


def log_uniform(rng, lo, hi):
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def sizes(rng, total, lo, hi):
    out, acc = [], 0
    while acc < total:
        s = min(log_uniform(rng, lo, hi), total - acc)
        out.append(s)
        acc += s
    return out


def vocabulary(rng, n=6000):
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4,
               2.4, 2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.2, 0.2, 0.1, 0.1]
    words = set()
    while len(words) < n:
        k = max(1, min(12, int(rng.gauss(6, 2.5))))
        words.add("".join(rng.choices(letters, weights, k=k)))
    words = sorted(words)
    rng.shuffle(words)
    # Zipf-like frequencies: a few words are very common, most are rare.
    cum, acc = [], 0.0
    for i in range(len(words)):
        acc += 1.0 / (i + 1)
        cum.append(acc)
    return words, cum


LEVELS = ["INFO"] * 14 + ["DEBUG"] * 4 + ["WARN"] * 2 + ["ERROR"]
SERVICES = ["api", "worker", "scheduler", "auth", "billing", "search", "mailer", "gateway"]
PATHS = ["/api/v1/orders", "/api/v1/patients", "/api/v1/invoices", "/login", "/health",
         "/api/v2/search", "/static/app.js", "/api/v1/appointments"]


def text_block(rng, words, cum, kind, nbytes, t0):
    """About nbytes of text of the given kind."""
    nwords = nbytes // 6 + 16
    ws = rng.choices(words, cum_weights=cum, k=nwords)
    lines, size, i, t = [], 0, 0, t0
    rnd = rng.random
    rint = rng.randrange
    while size < nbytes:
        if i + 20 > nwords:
            ws += rng.choices(words, cum_weights=cum, k=nwords)
            nwords = len(ws)
        if kind == "log":
            t += rnd() * 2.5
            sec = int(t)
            n = 4 + rint(10)
            line = (
                f"2025-{1 + sec // 2592000 % 12:02d}-{1 + sec // 86400 % 28:02d}T"
                f"{sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}.{int(t * 1000) % 1000:03d}Z "
                f"{LEVELS[rint(len(LEVELS))]} {SERVICES[rint(len(SERVICES))]}[{1000 + rint(64)}] "
                f"req={rint(1 << 32):08x} {PATHS[rint(len(PATHS))]} status={200 if rnd() < 0.93 else 500} "
                f"took={rint(900)}ms " + " ".join(ws[i:i + n])
            )
        elif kind == "csv":
            n = 3
            line = (
                f"{rint(10**7)},{ws[i]} {ws[i + 1]},{ws[i + 2]}@example.org,"
                f"{rint(100000) / 100:.2f},{rint(1 << 30)},{'yes' if rnd() < 0.5 else 'no'}"
            )
        else:  # prose
            n = 8 + rint(40)
            s = " ".join(ws[i:i + n])
            line = s[:1].upper() + s[1:] + "."
        i += n
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n", t


def main():
    root, total_mib = sys.argv[1], float(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 42
    rng = random.Random(seed)
    total = int(total_mib * MIB)
    half = total // 2
    words, cum = vocabulary(rng)

    n_files = n_bytes = 0
    t0 = 1.7e9 % 1e7
    kinds = [("log", "logs", "log"), ("prose", "docs", "txt"), ("csv", "exports", "csv")]
    for idx, size in enumerate(sizes(rng, half, 2 << 10, 1 * MIB)):
        kind, top, ext = kinds[0] if rng.random() < 0.6 else kinds[1 + rng.randrange(2)]
        d = os.path.join(root, top, f"{rng.randrange(8):02d}", f"{rng.randrange(12):02d}")
        os.makedirs(d, exist_ok=True)
        body, t0 = text_block(rng, words, cum, kind, size, t0)
        data = body.encode()[:size]
        with open(os.path.join(d, f"{kind}-{idx:05d}.{ext}"), "wb") as f:
            f.write(data)
        n_files += 1
        n_bytes += len(data)
    for idx, size in enumerate(sizes(rng, total - half, 8 << 10, 4 * MIB)):
        top = "media" if rng.random() < 0.7 else "archives"
        ext = {"media": "jpg", "archives": "bin"}[top]
        d = os.path.join(root, top, f"{rng.randrange(6):02d}", f"{rng.randrange(10):02d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"blob-{idx:05d}.{ext}"), "wb") as f:
            left = size
            while left:
                chunk = min(left, 4 * MIB)
                f.write(os.urandom(chunk))
                left -= chunk
        n_files += 1
        n_bytes += size
    print(f"{n_files} files, {n_bytes} bytes")


if __name__ == "__main__":
    main()
