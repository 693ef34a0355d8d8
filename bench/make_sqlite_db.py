"""Generate a synthetic SQLite database of about the requested size, for benchmarks.

Tables mix the shapes real databases have: narrow numeric rows, text-heavy rows, and rows with
BLOBs of a few kilobytes. Deterministic for a given seed.

    python bench/make_sqlite_db.py OUT.db --size-mb 1024
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import string

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
         "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
         "ünïcödé", "日本語", "emoji 🎉", "naïve", "Zürich"]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def generate(path: str, size_mb: int, seed: int = 42) -> None:
    """Write a database of roughly ``size_mb`` megabytes to ``path`` (which must not exist)."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, city TEXT,
                                balance REAL, created_at TEXT, notes TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, customer_id INTEGER REFERENCES customers(id),
                             amount NUMERIC(10,2), quantity INTEGER, status TEXT, placed_at TEXT);
        CREATE TABLE documents (id INTEGER PRIMARY KEY, title TEXT, body TEXT, attachment BLOB);
        CREATE TABLE events (ts INTEGER, kind TEXT, payload TEXT);
        CREATE INDEX orders_customer ON orders(customer_id);
        """
    )
    target = size_mb * 1024 * 1024
    batch = 5000
    customer_id = order_id = document_id = 0
    while os.path.getsize(path) < target:
        conn.execute("BEGIN")
        customers = []
        for _ in range(batch):
            customer_id += 1
            customers.append((customer_id, _sentence(rng, 2), f"user{customer_id}@example.org", rng.choice(WORDS),
                              round(rng.uniform(-1000, 100000), 2), f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:00:00Z",
                              _sentence(rng, rng.randint(0, 30)) or None))
        conn.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?)", customers)
        orders = []
        for _ in range(batch * 3):
            order_id += 1
            orders.append((order_id, rng.randint(1, customer_id), rng.randint(1, 99999) / 100, rng.randint(1, 20),
                           rng.choice(["new", "paid", "shipped", "returned"]), f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"))
        conn.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?)", orders)
        documents = []
        for _ in range(batch // 10):
            document_id += 1
            blob = rng.randbytes(rng.randint(500, 8000)) if rng.random() < 0.7 else None
            documents.append((document_id, _sentence(rng, 5), _sentence(rng, rng.randint(50, 400)), blob))
        conn.executemany("INSERT INTO documents VALUES (?,?,?,?)", documents)
        events = [(rng.randint(1_600_000_000, 1_800_000_000), rng.choice(WORDS), "".join(rng.choices(string.ascii_letters, k=rng.randint(10, 120))))
                  for _ in range(batch * 2)]
        conn.executemany("INSERT INTO events VALUES (?,?,?)", events)
        conn.execute("COMMIT")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if os.path.exists(args.path):
        raise SystemExit(f"{args.path} exists")
    generate(args.path, args.size_mb, args.seed)


if __name__ == "__main__":
    main()
