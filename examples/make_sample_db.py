"""Make a small, realistic SQLite database to try unibackup on: a bookshop.

    python examples/make_sample_db.py sample.db [--seed 7] [--scale 1.0]

Seven related tables (authors, books, customers, orders, order_items, reviews, order_events) with
foreign keys, an AUTOINCREMENT table, a WITHOUT ROWID table, CHECK constraints, indexes, a view and
a trigger; book covers as BLOBs, names and reviews in many scripts (and emoji), and NULLs where
data is missing. About 9,000 rows at scale 1. The same seed always gives the same data.

Only the standard library is used. An existing file is replaced only when it is a sample database
made by this script (recognised by its ``application_id``); any other file is left alone.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import sqlite3
import sys
import zlib
from pathlib import Path

#: ``PRAGMA application_id`` of the databases this script makes ("ubks").
APPLICATION_ID = 0x75626B73
#: ``PRAGMA user_version``: the version of this sample's schema.
SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE authors (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL,
    country TEXT,                       -- NULL when unknown
    born    INTEGER,                    -- year; NULL when unknown
    bio     TEXT
);

CREATE TABLE books (
    id        INTEGER PRIMARY KEY,
    author_id INTEGER NOT NULL REFERENCES authors(id),
    title     TEXT NOT NULL,
    isbn      TEXT UNIQUE,
    published DATE,
    price     NUMERIC(8, 2) NOT NULL CHECK (price >= 0),
    stock     INTEGER NOT NULL DEFAULT 0,
    cover     BLOB                      -- a small PNG, NULL for some books
);

CREATE TABLE customers (
    id         INTEGER PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    full_name  TEXT NOT NULL,
    city       TEXT,
    created_at TEXT NOT NULL            -- ISO 8601, UTC
);

CREATE TABLE orders (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    ordered_at  TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'paid', 'shipped', 'cancelled')),
    note        TEXT
);

CREATE TABLE order_items (
    order_id   INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    book_id    INTEGER NOT NULL REFERENCES books(id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    unit_price REAL NOT NULL,
    PRIMARY KEY (order_id, book_id)
) WITHOUT ROWID;

CREATE TABLE reviews (
    id          INTEGER PRIMARY KEY,
    book_id     INTEGER NOT NULL REFERENCES books(id),
    customer_id INTEGER REFERENCES customers(id) ON DELETE SET NULL,
    rating      INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body        TEXT,
    created_at  TEXT NOT NULL
);

CREATE TABLE order_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    status   TEXT NOT NULL,
    at       TEXT NOT NULL
);

CREATE INDEX books_by_author ON books (author_id);
CREATE INDEX orders_by_customer ON orders (customer_id, ordered_at);
CREATE INDEX reviews_by_book ON reviews (book_id, rating DESC);

-- every change of an order's status is recorded
CREATE TRIGGER order_status_changed AFTER UPDATE OF status ON orders
WHEN NEW.status IS NOT OLD.status
BEGIN
    INSERT INTO order_events (order_id, status, at) VALUES (NEW.id, NEW.status, NEW.ordered_at);
END;

CREATE VIEW book_sales AS
SELECT b.id AS book_id, b.title, a.name AS author,
       sum(i.quantity) AS copies, round(sum(i.quantity * i.unit_price), 2) AS revenue
FROM books AS b
JOIN authors AS a ON a.id = b.author_id
JOIN order_items AS i ON i.book_id = b.id
JOIN orders AS o ON o.id = i.order_id AND o.status <> 'cancelled'
GROUP BY b.id;
"""

FIRST_NAMES = [
    "Ada", "Björn", "Chloé", "Dmitri", "Eşref", "Fatima", "Giulia", "Hiroshi", "Ingrid", "José",
    "Kwame", "Łucja", "Mário", "Nguyễn", "Olúwaseun", "Priya", "Quentin", "Ragnhild", "Søren", "Zoë",
    "Алексей", "Μαρία", "李", "さくら", "민준", "محمد", "אורי", "Ψάπφω",
]
LAST_NAMES = [
    "Okafor", "Müller", "García", "Nowak", "Kowalczyk", "Smith", "Johansson", "Dubois", "Rossi",
    "Tanaka", "Øvrebø", "O'Brien", "Ivanova", "Çelik", "Đorđević", "Van der Berg", "Иванов", "王",
    "Παπαδόπουλος", "佐藤",
]
COUNTRIES = ["NG", "DE", "ES", "PL", "GB", "SE", "FR", "IT", "JP", "NO", "IE", "RU", "TR", "RS", "NL", "CN", "GR", "KR", "EG", "IL"]
CITIES = ["Lagos", "München", "Sevilla", "Kraków", "Leeds", "Göteborg", "Lyon", "Torino", "大阪", "Tromsø",
          "Cork", "Санкт-Петербург", "İstanbul", "Niš", "Utrecht", "上海", "Θεσσαλονίκη", "서울", None]
TITLE_WORDS = ["Night", "River", "Garden", "Glass", "Winter", "Letters", "Silence", "Harbour", "Map",
               "Orchard", "Lanterns", "Salt", "Bridge", "Ashes", "Songs", "Mirror", "Forest", "Clocks",
               "Jardín", "Nacht", "Ночь", "夜", "Θάλασσα", "Été"]
REVIEW_PHRASES = ["Loved it!", "Could not put it down.", "A bit slow in the middle.", "Beautiful prose ✨",
                  "Not for me.", "Five stars ⭐⭐⭐⭐⭐", "Traduction excellente.", "Sehr empfehlenswert.",
                  "とても面白かった。", "Отличная книга.", "Meh 🤷", "The ending made me cry 😢",
                  "Line one.\nLine two, after a newline.", "Quotes \"inside\" and a tab\there."]
#: what happens to an order after it is placed (each step fires the trigger)
HISTORIES = [(), ("paid",), ("paid", "shipped"), ("paid", "shipped"), ("paid", "shipped"), ("cancelled",), ("paid", "cancelled")]

EPOCH = datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc)


def _moment(rng: random.Random, days: int = 1200) -> datetime.datetime:
    return EPOCH + datetime.timedelta(seconds=rng.randrange(days * 86400))


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _png(rng: random.Random, width: int, height: int) -> bytes:
    """A small, valid greyscale PNG with random pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    rows = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(width)) for _ in range(height))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def _isbn(rng: random.Random) -> str:
    digits = [9, 7, 8] + [rng.randrange(10) for _ in range(9)]
    check = (10 - sum(d * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits)) % 10) % 10
    return "".join(map(str, digits + [check]))


def fill(conn: sqlite3.Connection, seed: int, scale: float) -> dict[str, int]:
    """Create the schema and the rows; return the row count of each table."""
    rng = random.Random(seed)
    n = lambda base: max(1, int(base * scale))  # noqa: E731
    conn.executescript(SCHEMA)

    authors = []
    for author_id in range(1, n(60) + 1):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        country = rng.choice(COUNTRIES) if rng.random() > 0.1 else None
        born = rng.randrange(1890, 2000) if rng.random() > 0.2 else None
        bio = f"{name} writes about {rng.choice(TITLE_WORDS).lower()}." if rng.random() > 0.5 else None
        authors.append((author_id, name, country, born, bio))
    conn.executemany("INSERT INTO authors VALUES (?, ?, ?, ?, ?)", authors)

    books = []
    isbns: set[str] = set()
    for book_id in range(1, n(400) + 1):
        title = " ".join(rng.sample(TITLE_WORDS, rng.randrange(1, 4)))
        isbn = _isbn(rng)
        if isbn in isbns or rng.random() < 0.05:
            isbn = None  # an out-of-print edition without an ISBN (UNIQUE allows many NULLs)
        else:
            isbns.add(isbn)
        published = (datetime.date(1950, 1, 1) + datetime.timedelta(days=rng.randrange(27000))).isoformat()
        price = round(rng.uniform(4, 60), 2)
        cover = _png(rng, rng.randrange(8, 24), rng.randrange(8, 24)) if rng.random() > 0.25 else None
        books.append((book_id, rng.randrange(1, len(authors) + 1), title, isbn, published, price, rng.randrange(0, 50), cover))
    conn.executemany("INSERT INTO books VALUES (?, ?, ?, ?, ?, ?, ?, ?)", books)

    customers = []
    for customer_id in range(1, n(500) + 1):
        full_name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        email = f"customer{customer_id}@example.org"
        customers.append((customer_id, email, full_name, rng.choice(CITIES), _iso(_moment(rng, 400))))
    conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", customers)

    item_rows = []
    histories = []
    for _ in range(n(1500)):
        ordered_at = _iso(_moment(rng))
        note = rng.choice([None, None, None, "gift wrap", "leave at the door", "Bitte klingeln 🔔"])
        order_id = conn.execute(
            "INSERT INTO orders (customer_id, ordered_at, note) VALUES (?, ?, ?)",
            (rng.randrange(1, len(customers) + 1), ordered_at, note),
        ).lastrowid
        for book_id in rng.sample(range(1, len(books) + 1), rng.randrange(1, 5)):
            item_rows.append((order_id, book_id, rng.randrange(1, 4), books[book_id - 1][5]))
        histories.append((order_id, rng.choice(HISTORIES)))
    conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?)", item_rows)
    # move orders along; the trigger records each change in order_events
    for step in range(max(len(history) for history in HISTORIES)):
        changes = [(history[step], order_id) for order_id, history in histories if step < len(history)]
        conn.executemany("UPDATE orders SET status = ? WHERE id = ?", changes)
    # the newest orders were deleted by a clean-up job: AUTOINCREMENT keeps their ids retired
    conn.execute("DELETE FROM orders WHERE id > (SELECT max(id) - 5 FROM orders)")

    reviews = []
    for review_id in range(1, n(800) + 1):
        body = rng.choice(REVIEW_PHRASES) if rng.random() > 0.15 else None
        customer = rng.randrange(1, len(customers) + 1) if rng.random() > 0.05 else None
        reviews.append((review_id, rng.randrange(1, len(books) + 1), customer, rng.randrange(1, 6), body, _iso(_moment(rng))))
    conn.executemany("INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?)", reviews)

    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
    return {table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}


def _is_sample(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def make_sample_db(path: str | os.PathLike[str], seed: int = 7, scale: float = 1.0) -> dict[str, int]:
    """Write the sample database to ``path`` (built beside it, then moved into place)."""
    path = Path(path)
    if path.exists() and not (path.is_file() and _is_sample(path)):
        raise FileExistsError(f"{path} exists and is not a sample database made by this script; choose another name")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    conn = sqlite3.connect(temporary)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        with conn:
            counts = fill(conn, seed, scale)
        conn.execute("PRAGMA foreign_key_check").fetchall()
    except BaseException:
        conn.close()
        temporary.unlink(missing_ok=True)
        raise
    conn.close()
    os.replace(temporary, path)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", default="sample.db", help="the database to write (default: sample.db)")
    parser.add_argument("--seed", type=int, default=7, help="random seed; the same seed gives the same data (default: 7)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every table's size (default: 1.0, about 9,000 rows)")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    try:
        counts = make_sample_db(args.path, args.seed, args.scale)
    except (OSError, sqlite3.Error) as error:
        print(f"make_sample_db: error: {error}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{table} {count}" for table, count in counts.items())
    print(f"wrote {args.path}: {sum(counts.values())} rows ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
