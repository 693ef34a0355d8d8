"""Benchmark unibackup against the server engines' own dump tools, on the same databases, in the same run.

PostgreSQL (Pagila, and a synthetic table made by the server):

- backup:  ``unibackup backup URL`` vs ``pg_dump -Fc`` and ``pg_dump | zstd -3 -T0``
- restore: ``unibackup restore`` into a new database vs ``pg_restore`` of the ``-Fc`` file

MySQL/MariaDB (Chinook, and a synthetic table made from MariaDB's sequence engine):

- backup:  ``unibackup backup URL`` vs ``mysqldump --single-transaction | zstd -3 -T0``
- restore: ``unibackup restore`` into a new database vs ``zstd -dc dump | mysql``

It reports wall time (median), peak RSS of the process tree and output size, with ratios to the
peer: a ratio above 1.0 means slower (or bigger) than the peer. Every database it makes is named
``ubbench_*`` and dropped at the end.

    python bench/bench_servers.py --engines postgresql,mysql --synthetic-rows 500000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_sqlite import run_measured, unibackup_command  # noqa: E402

DATA = HERE.parent.parent / "shared" / "data"
PAGILA = (DATA / "pagila" / "pagila-schema.sql", DATA / "pagila" / "pagila-data.sql")
CHINOOK_MYSQL = DATA / "chinook" / "Chinook_MySql.sql"
_MYSQL_DATABASE_LINES = re.compile(r"^\s*(?:DROP\s+DATABASE|CREATE\s+DATABASE|USE)\b[^;]*;", re.IGNORECASE | re.MULTILINE)


def with_database(url: str, database: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{database}"))


def run(command: list[str], stdin: str | None = None) -> str:
    result = subprocess.run(command, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-2000:]}")
    return result.stdout


class PostgreSQL:
    name = "postgresql"
    tools = ("psql", "pg_dump", "pg_restore", "zstd")

    def __init__(self, url: str):
        self.url = url

    def sql(self, database: str, statement: str) -> str:
        return run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", with_database(self.url, database), "-c", statement])

    def create(self, database: str) -> None:
        self.sql("postgres", f'CREATE DATABASE "{database}"')

    def drop(self, database: str) -> None:
        self.sql("postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def load_sample(self, database: str) -> bool:
        if not all(script.exists() for script in PAGILA):
            return False
        for script in PAGILA:
            run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", with_database(self.url, database), "-f", str(script)])
        return True

    def load_synthetic(self, database: str, rows: int) -> None:
        self.sql(database, f"""
            CREATE TABLE synthetic (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(12,2),
                                    created timestamptz, payload bytea, flag boolean);
            INSERT INTO synthetic SELECT g, md5(g::text) || repeat('x', 40), (g % 100000) / 100.0,
                   timestamptz '2020-01-01' + g * interval '1 second', decode(md5(g::text), 'hex'), g % 2 = 0
            FROM generate_series(1, {rows}) AS g;
            ANALYZE synthetic;""")

    def size(self, database: str) -> int:
        return int(self.sql(database, "SELECT pg_database_size(current_database())").strip())

    def peers(self, database: str, out: Path) -> dict[str, Callable[[], tuple[float, int, Path]]]:
        url = with_database(self.url, database)
        custom, piped = out / "pg_dump.dump", out / "pg_dump.sql.zst"

        def custom_format() -> tuple[float, int, Path]:
            elapsed, rss, _ = run_measured(["pg_dump", "-Fc", "-d", url, "-f", str(custom)])
            return elapsed, rss, custom

        def zstd_piped() -> tuple[float, int, Path]:
            elapsed, rss, _ = run_measured(f"pg_dump -d '{url}' | zstd -3 -T0 -q > '{piped}'", shell=True)
            return elapsed, rss, piped

        return {"pg_dump -Fc": custom_format, "pg_dump | zstd -3": zstd_piped}

    def peer_restore(self, dump: Path, database: str) -> tuple[float, int]:
        elapsed, rss, _ = run_measured(["pg_restore", "-d", with_database(self.url, database), "--no-owner", str(dump)])
        return elapsed, rss


class MySQL:
    name = "mysql"
    tools = ("mysql", "mysqldump", "zstd")

    def __init__(self, url: str):
        self.url = url
        parts = urllib.parse.urlsplit(url)
        self.client_args = ["-h", parts.hostname or "127.0.0.1", "-P", str(parts.port or 3306), "-u", urllib.parse.unquote(parts.username or "root")]
        if parts.password:
            self.client_args.append(f"-p{urllib.parse.unquote(parts.password)}")

    def sql(self, database: str | None, statement: str) -> str:
        return run(["mysql", *self.client_args, "-N", "-B", *([database] if database else []), "-e", statement])

    def create(self, database: str) -> None:
        self.sql(None, f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")

    def drop(self, database: str) -> None:
        self.sql(None, f"DROP DATABASE IF EXISTS `{database}`")

    def load_sample(self, database: str) -> bool:
        if not CHINOOK_MYSQL.exists():
            return False
        script = _MYSQL_DATABASE_LINES.sub("", CHINOOK_MYSQL.read_text(encoding="utf-8"))
        run(["mysql", *self.client_args, database], stdin=script)
        return True

    def load_synthetic(self, database: str, rows: int) -> None:
        self.sql(database, f"""
            CREATE TABLE synthetic (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, amount DECIMAL(12,2),
                                    created DATETIME(6), payload VARBINARY(16), flag BOOLEAN) ENGINE=InnoDB;
            INSERT INTO synthetic SELECT seq, CONCAT(MD5(seq), REPEAT('x', 40)), (seq % 100000) / 100.0,
                   TIMESTAMP '2020-01-01 00:00:00' + INTERVAL seq SECOND, UNHEX(MD5(seq)), seq % 2 = 0
            FROM seq_1_to_{rows};
            ANALYZE TABLE synthetic;""")

    def size(self, database: str) -> int:
        return int(self.sql(None, f"SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = '{database}'").strip())

    def peers(self, database: str, out: Path) -> dict[str, Callable[[], tuple[float, int, Path]]]:
        piped = out / "mysqldump.sql.zst"
        args = " ".join(f"'{a}'" for a in self.client_args)

        def zstd_piped() -> tuple[float, int, Path]:
            elapsed, rss, _ = run_measured(
                f"mysqldump {args} --single-transaction --routines --triggers '{database}' | zstd -3 -T0 -q > '{piped}'", shell=True
            )
            return elapsed, rss, piped

        return {"mysqldump | zstd -3": zstd_piped}

    def peer_restore(self, dump: Path, database: str) -> tuple[float, int]:
        args = " ".join(f"'{a}'" for a in self.client_args)
        elapsed, rss, _ = run_measured(f"zstd -dc '{dump}' | mysql {args} '{database}'", shell=True)
        return elapsed, rss


def median_of(samples: list[tuple[float, int]]) -> dict[str, float]:
    return {"seconds": statistics.median(s for s, _ in samples), "peak_rss_mb": max(r for _, r in samples) / 2**20}


def bench_database(engine: PostgreSQL | MySQL, label: str, database: str, workdir: Path, repeat: int, made: list[str]) -> dict:
    out = workdir / f"out-{engine.name}-{label}"
    timings: dict[str, list[tuple[float, int]]] = {}
    sizes: dict[str, int] = {}
    peer_dumps: dict[str, Path] = {}
    for attempt in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        url = with_database(engine.url, database)
        elapsed, rss, stdout = run_measured(unibackup_command() + ["backup", url, "-o", str(out)])
        backup = Path(stdout.strip().splitlines()[-1])
        timings.setdefault("unibackup backup", []).append((elapsed, rss))
        sizes["unibackup"] = backup.stat().st_size
        for peer, measure in engine.peers(database, out).items():
            elapsed, rss, dump = measure()
            timings.setdefault(peer, []).append((elapsed, rss))
            sizes[peer] = dump.stat().st_size
            peer_dumps[peer] = dump
        elapsed, rss, _ = run_measured(unibackup_command() + ["verify", str(backup)])
        timings.setdefault("unibackup verify", []).append((elapsed, rss))
        target = f"ubbench_{engine.name[:2]}_restore_{secrets.token_hex(3)}"
        made.append(target)
        elapsed, rss, _ = run_measured(unibackup_command() + ["restore", str(backup), with_database(engine.url, target)])
        timings.setdefault("unibackup restore", []).append((elapsed, rss))
        engine.drop(target)
        peer_name, dump = next(iter(peer_dumps.items()))
        engine.create(target)
        timings.setdefault(f"restore of {peer_name}", []).append(engine.peer_restore(dump, target))
        engine.drop(target)
    shutil.rmtree(out, ignore_errors=True)
    results = {name: median_of(samples) for name, samples in timings.items()}
    first_peer = next(iter(engine.peers(database, out)))
    return {
        "engine": engine.name,
        "database": label,
        "database_bytes": engine.size(database),
        "output_bytes": sizes,
        "results": results,
        "backup_ratio": {peer: results["unibackup backup"]["seconds"] / results[peer]["seconds"] for peer in engine.peers(database, out)},
        "size_ratio": {peer: sizes["unibackup"] / sizes[peer] for peer in engine.peers(database, out)},
        "restore_ratio": results["unibackup restore"]["seconds"] / results[f"restore of {first_peer}"]["seconds"],
    }


def bench_engine(engine: PostgreSQL | MySQL, workdir: Path, repeat: int, synthetic_rows: int) -> list[dict]:
    missing = [tool for tool in engine.tools if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"the peer tools {', '.join(missing)} are not installed")
    made: list[str] = []
    summaries = []
    try:
        sample = f"ubbench_{engine.name[:2]}_sample_{secrets.token_hex(3)}"
        made.append(sample)
        engine.create(sample)
        if engine.load_sample(sample):
            summaries.append(bench_database(engine, "sample", sample, workdir, repeat, made))
        else:
            print(f"{engine.name}: the sample database is not there; skipped", file=sys.stderr)
        if synthetic_rows:
            synthetic = f"ubbench_{engine.name[:2]}_synthetic_{secrets.token_hex(3)}"
            made.append(synthetic)
            engine.create(synthetic)
            engine.load_synthetic(synthetic, synthetic_rows)
            summaries.append(bench_database(engine, f"synthetic {synthetic_rows} rows", synthetic, workdir, repeat, made))
    finally:
        for database in made:
            engine.drop(database)
    return summaries


def print_summary(summaries: list[dict]) -> None:
    for s in summaries:
        print(f"\n{s['engine']} {s['database']}: {s['database_bytes'] / 2**20:.1f} MB on the server")
        print(f"  {'command':<32} {'median':>9} {'peak RSS':>9} {'output':>10}")
        for name, result in s["results"].items():
            key = "unibackup" if name == "unibackup backup" else name
            size = s["output_bytes"].get(key)
            size_text = f"{size / 2**20:>8.2f}MB" if size is not None else ""
            print(f"  {name:<32} {result['seconds']:>8.2f}s {result['peak_rss_mb']:>7.0f}MB {size_text:>10}")
        for peer, ratio in s["backup_ratio"].items():
            print(f"  backup time / {peer}: {ratio:.2f}; size / {peer}: {s['size_ratio'][peer]:.2f}")
        print(f"  restore time / its peer: {s['restore_ratio']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="postgresql,mysql", help="comma-separated: postgresql, mysql")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--mysql-url", default="mysql://root@127.0.0.1:3306/test")
    parser.add_argument("--synthetic-rows", type=int, default=500_000, help="rows of the synthetic table; 0 for none")
    parser.add_argument("--workdir", default=str(HERE / "results"), help="where outputs go")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    engines = {"postgresql": lambda: PostgreSQL(args.postgres_url), "mysql": lambda: MySQL(args.mysql_url)}
    summaries: list[dict] = []
    for name in args.engines.split(","):
        if name not in engines:
            raise SystemExit(f"unknown engine {name!r}; known: {', '.join(engines)}")
        summaries.extend(bench_engine(engines[name](), workdir, args.repeat, args.synthetic_rows))
    print_summary(summaries)
    (workdir / "bench_servers.json").write_text(json.dumps(summaries, indent=2))


if __name__ == "__main__":
    main()
