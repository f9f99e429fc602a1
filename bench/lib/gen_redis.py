#!/usr/bin/env python3
"""Writes Redis protocol for `redis-cli --pipe`: N keys of mixed types.

    gen_redis.py N [SEED] | redis-cli ... --pipe

About 80% strings (sessions, cache entries: 20-300 bytes), 8% hashes (user
profiles, 4-8 fields), 6% lists (queues, 3-12 items), 3% sets, 3% sorted sets;
1% of the keys have a TTL of a week (far beyond the benchmark). Deterministic for a
given SEED.
"""

import random
import sys


def cmd(*parts):
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        if not isinstance(p, bytes):
            p = str(p).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(out)


def main():
    n = int(sys.argv[1])
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 7)
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-_ "
    pool = bytes(rng.choice(alphabet) for _ in range(1 << 16))
    out = sys.stdout.buffer
    buf = []

    def text(k):
        i = rng.randrange(len(pool) - k)
        return pool[i:i + k]

    for i in range(n):
        r = rng.random()
        if r < 0.80:
            key = b"session:%d" % i if i % 2 else b"cache:page:%d" % i
            buf.append(cmd(b"SET", key, b"%x|" % rng.getrandbits(64) + text(rng.randrange(20, 300))))
        elif r < 0.88:
            key = b"user:%d" % i
            parts = [b"HSET", key]
            for f in range(rng.randrange(4, 9)):
                parts += [b"f%d" % f, text(rng.randrange(5, 40))]
            buf.append(cmd(*parts))
        elif r < 0.94:
            key = b"queue:%d" % i
            buf.append(cmd(b"RPUSH", key, *[text(rng.randrange(10, 80)) for _ in range(rng.randrange(3, 13))]))
        elif r < 0.97:
            key = b"tags:%d" % i
            buf.append(cmd(b"SADD", key, *[b"t%d" % rng.randrange(500) for _ in range(rng.randrange(2, 10))]))
        else:
            key = b"rank:%d" % i
            parts = [b"ZADD", key]
            for m in range(rng.randrange(3, 12)):
                parts += [b"%d" % rng.randrange(10**6), b"m%d" % m]
            buf.append(cmd(*parts))
        if rng.random() < 0.01:
            buf.append(cmd(b"EXPIRE", key, 7 * 86400))
        if len(buf) >= 4096:
            out.write(b"".join(buf))
            buf.clear()
    out.write(b"".join(buf))


if __name__ == "__main__":
    main()
