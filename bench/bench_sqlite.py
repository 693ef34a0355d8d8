"""Benchmark unibackup against ``sqlite3 DB .dump | zstd -3 -T0`` on the same files, in the same run.

For each size it generates a synthetic database (bench/make_sqlite_db.py, cached in the work
directory), then times, alternately and ``--repeat`` times each:

- backup:  ``unibackup backup DB`` vs ``sqlite3 DB .dump | zstd -3 -T0``
- restore: ``unibackup restore`` vs ``zstd -dc dump | sqlite3 NEW``
- verify:  ``unibackup verify --level full`` (no peer: a dump cannot be verified without a server)

and reports wall time (median), peak RSS and output size, with ratios to the peer. Goals live
here, not in the unit tests: a ratio above 1.0 means slower than the peer.

    python bench/bench_sqlite.py --sizes 10,1024 --workdir /tmp/ubbench
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_sqlite_db import generate  # noqa: E402


def run_measured(command: list[str] | str, *, shell: bool = False, cwd: Path | None = None) -> tuple[float, int, str]:
    """Run a command; return (wall seconds, peak RSS bytes of the process tree, stdout)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, shell=shell, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    stdout = process.stdout.read().decode() if process.stdout else ""
    stderr = process.stderr.read().decode() if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"command failed ({process.returncode}): {command}\n{stderr}")
    return elapsed, usage.ru_maxrss * 1024, stdout


def unibackup_command() -> list[str]:
    return [sys.executable, "-m", "unibackup", "-q"]


def bench_size(size_mb: int, workdir: Path, repeat: int) -> dict:
    database = workdir / f"synthetic-{size_mb}mb.db"
    if not database.exists():
        print(f"generating {database.name} ...", file=sys.stderr)
        generate(str(database), size_mb)
    out = workdir / f"out-{size_mb}"
    results: dict[str, list[tuple[float, int]]] = {k: [] for k in ("ub_backup", "peer_backup", "ub_restore", "peer_restore", "ub_verify")}
    sizes: dict[str, int] = {}
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        elapsed, rss, stdout = run_measured(unibackup_command() + ["backup", str(database), "-o", str(out)])
        backup = Path(stdout.strip().splitlines()[-1])
        results["ub_backup"].append((elapsed, rss))
        sizes["unibackup"] = backup.stat().st_size
        dump = out / "dump.sql.zst"
        elapsed, rss, _ = run_measured(f"sqlite3 '{database}' .dump | zstd -3 -T0 -q > '{dump}'", shell=True)
        results["peer_backup"].append((elapsed, rss))
        sizes["peer"] = dump.stat().st_size
        elapsed, rss, _ = run_measured(unibackup_command() + ["verify", str(backup)])
        results["ub_verify"].append((elapsed, rss))
        elapsed, rss, _ = run_measured(unibackup_command() + ["restore", str(backup), str(out / "restored.db")])
        results["ub_restore"].append((elapsed, rss))
        elapsed, rss, _ = run_measured(f"zstd -dc '{dump}' | sqlite3 '{out / 'peer.db'}'", shell=True)
        results["peer_restore"].append((elapsed, rss))
    summary = {
        "size_mb": size_mb,
        "database_bytes": database.stat().st_size,
        "backup_bytes": sizes,
    }
    for key, samples in results.items():
        summary[key] = {"seconds": statistics.median(s for s, _ in samples), "peak_rss_mb": max(r for _, r in samples) / 2**20}
    summary["backup_ratio"] = summary["ub_backup"]["seconds"] / summary["peer_backup"]["seconds"]
    summary["restore_ratio"] = summary["ub_restore"]["seconds"] / summary["peer_restore"]["seconds"]
    summary["size_ratio"] = sizes["unibackup"] / sizes["peer"]
    shutil.rmtree(out, ignore_errors=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100", help="database sizes in MB, comma-separated")
    parser.add_argument("--workdir", default=str(HERE / "results"), help="where databases and outputs go")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for tool in ("sqlite3", "zstd"):
        if shutil.which(tool) is None:
            raise SystemExit(f"the peer tool {tool!r} is not installed")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    summaries = [bench_size(int(size), workdir, args.repeat) for size in args.sizes.split(",")]
    print(f"{'size':>8} {'ub backup':>10} {'peer':>8} {'ratio':>6} {'ub RSS':>8} {'peer RSS':>9} {'ub size':>10} {'peer size':>10} "
          f"{'ub restore':>11} {'peer':>8} {'ratio':>6} {'verify':>7}")
    for s in summaries:
        print(
            f"{s['database_bytes'] / 2**20:>6.0f}MB {s['ub_backup']['seconds']:>9.2f}s {s['peer_backup']['seconds']:>7.2f}s {s['backup_ratio']:>6.2f} "
            f"{s['ub_backup']['peak_rss_mb']:>6.0f}MB {s['peer_backup']['peak_rss_mb']:>7.0f}MB "
            f"{s['backup_bytes']['unibackup'] / 2**20:>8.1f}MB {s['backup_bytes']['peer'] / 2**20:>8.1f}MB "
            f"{s['ub_restore']['seconds']:>10.2f}s {s['peer_restore']['seconds']:>7.2f}s {s['restore_ratio']:>6.2f} {s['ub_verify']['seconds']:>6.2f}s"
        )
    (workdir / "bench_sqlite.json").write_text(json.dumps(summaries, indent=2))


if __name__ == "__main__":
    main()
