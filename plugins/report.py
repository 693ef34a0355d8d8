"""The ``report`` command: recent runs from the history, trends, the failure rate, recommendations.

``unibackup report [--last N] [--operation KIND] [--source TEXT] [--json]`` reads the file the
``history`` listener writes. A trend compares each subject's latest successful run (the source of
a backup, the target of a restore) with the median of the runs before it. Every recommendation
quotes the recorded numbers it rests on; none is made without them:

- peak memory at or past :data:`MEMORY_NEAR` of the budget in the latest run;
- throughput down by :data:`THROUGHPUT_DROP` or more against the median of at least
  :data:`MIN_PREVIOUS` earlier runs (and, when it is steady, a duration that grew with the data);
- a compressor at least :data:`SLOWER_FACTOR` times slower than another one on the same source
  for a file less than :data:`SMALLER_ENOUGH` smaller;
- repeated failures, and retries in many runs.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Iterable

import attrs
import click
import orjson

from unibackup import hookimpl
from unibackup.models import to_dict
from unibackup.plugins.history import HistoryRecord, history_path, read_history

#: the latest records of the history the report reads (memory stays bounded however old it is)
MAX_RECORDS = 20_000
#: earlier runs a trend's median is taken over
TREND_WINDOW = 20
#: earlier runs needed before a change is worth a recommendation
MIN_PREVIOUS = 3
THROUGHPUT_DROP = 0.25
DURATION_GROWTH = 0.5
DATA_GROWTH = 0.3
MEMORY_NEAR = 0.8
SLOWER_FACTOR = 2.0
SMALLER_ENOUGH = 0.10
#: recent runs of a subject that failure and retry rates are judged over
RATE_WINDOW = 20
FAILURE_RATE = 0.2
RETRY_RATE = 0.3
MIB = 1024 * 1024


@attrs.frozen
class Trend:
    """A subject's latest successful run against the median of the runs before it."""

    operation: str
    subject: str
    runs: int
    latest_at: str
    latest_duration_s: float
    median_duration_s: float | None
    duration_change: float | None  # latest / median - 1
    throughput_unit: str  # "MB/s" or "rows/s"
    latest_throughput: float
    median_throughput: float | None
    throughput_change: float | None
    rows_change: float | None


@attrs.frozen
class SubjectFailures:
    operation: str
    subject: str
    runs: int
    failed: int
    cancelled: int
    last_error: str | None


@attrs.frozen
class FailureSummary:
    runs: int
    succeeded: int
    failed: int
    cancelled: int
    failure_rate: float
    by_subject: tuple[SubjectFailures, ...] = ()


@attrs.frozen
class Recommendation:
    topic: str  # memory, throughput, duration, compression, failures, retries
    subject: str | None
    message: str


@attrs.frozen
class Report:
    history_file: str
    total_runs: int
    skipped_lines: int
    runs: tuple[HistoryRecord, ...]
    trends: tuple[Trend, ...]
    failures: FailureSummary
    recommendations: tuple[Recommendation, ...]
    recorded_runs: int = 0  # in the file, before --operation and --source


def _runs_of(operation: str) -> str:
    """``backup`` -> ``backups``, ``verify`` -> ``verify runs``: the plural a sentence needs."""
    return f"{operation}s" if operation in ("backup", "restore", "check") else f"{operation} runs"


def subject_of(record: HistoryRecord) -> str:
    """What a run is about: the target of a restore, the source of anything else."""
    if record.operation == "restore":
        return record.target or record.source or "?"
    return record.source or record.target or "?"


def _throughput(record: HistoryRecord, unit: str) -> float:
    return record.mb_per_second if unit == "MB/s" else record.rows_per_second


def _change(latest: float, median: float | None) -> float | None:
    if median is None or median <= 0:
        return None
    return latest / median - 1


def _percent(change: float) -> str:
    return f"{abs(change) * 100:.0f}%"


def _groups(records: Iterable[HistoryRecord]) -> dict[tuple[str, str], list[HistoryRecord]]:
    groups: dict[tuple[str, str], list[HistoryRecord]] = {}
    for record in records:
        groups.setdefault((record.operation, subject_of(record)), []).append(record)
    return groups


def compute_trend(operation: str, subject: str, runs: list[HistoryRecord]) -> Trend | None:
    """The trend of one subject's successful runs (oldest first); None without a run."""
    good = [r for r in runs if r.outcome == "succeeded" and r.duration_s > 0]
    if not good:
        return None
    latest = good[-1]
    previous = good[:-1][-TREND_WINDOW:]
    unit = "MB/s" if all(r.bytes > 0 for r in good[-TREND_WINDOW - 1 :]) else "rows/s"
    median_duration = statistics.median(r.duration_s for r in previous) if previous else None
    median_throughput = statistics.median(_throughput(r, unit) for r in previous) if previous else None
    median_rows = statistics.median(r.rows for r in previous) if previous else None
    latest_throughput = _throughput(latest, unit)
    return Trend(
        operation=operation,
        subject=subject,
        runs=len(good),
        latest_at=latest.ended_at,
        latest_duration_s=latest.duration_s,
        median_duration_s=median_duration,
        duration_change=_change(latest.duration_s, median_duration),
        throughput_unit=unit,
        latest_throughput=latest_throughput,
        median_throughput=median_throughput,
        throughput_change=_change(latest_throughput, median_throughput),
        rows_change=_change(latest.rows, median_rows),
    )


def _trend_recommendations(trend: Trend, latest: HistoryRecord) -> list[Recommendation]:
    previous = trend.runs - 1
    if previous < MIN_PREVIOUS:
        return []
    found = []
    what = f"{_runs_of(trend.operation)} of {trend.subject}"
    if trend.throughput_change is not None and trend.throughput_change <= -THROUGHPUT_DROP:
        message = (
            f"throughput of {what} fell {_percent(trend.throughput_change)} against the median of the "
            f"{min(previous, TREND_WINDOW)} runs before ({trend.latest_throughput:.1f} vs "
            f"{trend.median_throughput:.1f} {trend.throughput_unit})"
        )
        if latest.retries:
            message += f"; the latest run needed {latest.retries} retries (a busy or locked source)"
        else:
            message += "; look at the load on the source and the target disk at that time"
        found.append(Recommendation("throughput", trend.subject, message))
    elif (
        trend.duration_change is not None
        and trend.duration_change >= DURATION_GROWTH
        and trend.rows_change is not None
        and trend.rows_change >= DATA_GROWTH
    ):
        found.append(Recommendation(
            "duration",
            trend.subject,
            f"{what} take {_percent(trend.duration_change)} longer than the median ({trend.latest_duration_s:.1f} vs "
            f"{trend.median_duration_s:.1f} s) because the data grew {_percent(trend.rows_change)}; the throughput "
            f"is steady; consider --exclude-table for tables that need no backup",
        ))
    return found


def _memory_recommendation(operation: str, subject: str, latest: HistoryRecord) -> Recommendation | None:
    peak, budget = latest.peak_rss_bytes, latest.memory_budget_bytes
    if not peak or not budget or peak < MEMORY_NEAR * budget:
        return None
    batch = f" (now {latest.batch_bytes // 1024} kB)" if latest.batch_bytes else ""
    verb = "exceeded" if peak > budget else "came near"
    return Recommendation(
        "memory",
        subject,
        f"peak memory of the latest {operation} of {subject} {verb} the budget: {peak / MIB:.0f} MiB, "
        f"{peak / budget:.0%} of {budget / MIB:.0f} MiB; lower batching.batch_bytes{batch} or raise "
        f"batching.memory_budget_mb",
    )


def _compressor_recommendations(subject: str, runs: list[HistoryRecord]) -> list[Recommendation]:
    """Compare the compressors used on one source, by median speed and median size ratio."""
    by_compressor: dict[str, list[HistoryRecord]] = {}
    for record in runs:
        if (
            record.outcome == "succeeded"
            and record.compressor
            and record.uncompressed_bytes
            and record.compressed_bytes
            and record.duration_s > 0
        ):
            by_compressor.setdefault(record.compressor, []).append(record)
    if len(by_compressor) < 2:
        return []
    figures = {
        name: (
            statistics.median(r.uncompressed_bytes / r.duration_s for r in records),  # type: ignore[operator]
            statistics.median(r.compressed_bytes / r.uncompressed_bytes for r in records),  # type: ignore[operator]
            len(records),
        )
        for name, records in by_compressor.items()
    }
    fastest = max(figures, key=lambda name: figures[name][0])
    fast_speed, fast_ratio, fast_runs = figures[fastest]
    found = []
    for name, (speed, ratio, count) in sorted(figures.items()):
        if name == fastest or speed <= 0:
            continue
        slower = fast_speed / speed
        gain = 1 - ratio / fast_ratio  # how much smaller its files are
        if slower < SLOWER_FACTOR or gain >= SMALLER_ENOUGH:
            continue
        size = f"for a {_percent(gain)} smaller file" if gain >= 0 else f"and its files are {_percent(gain)} larger"
        found.append(Recommendation(
            "compression",
            subject,
            f"{name} is {slower:.1f}x slower than {fastest} on {subject} {size} (medians of {count} and {fast_runs} "
            f"runs: {speed / 1e6:.1f} vs {fast_speed / 1e6:.1f} MB/s, ratio {ratio:.3f} vs {fast_ratio:.3f}); "
            f"prefer {fastest}",
        ))
    return found


def _failure_recommendation(operation: str, subject: str, recent: list[HistoryRecord]) -> Recommendation | None:
    failed = [r for r in recent if r.outcome == "failed"]
    if len(failed) < 2 or len(failed) / len(recent) < FAILURE_RATE:
        return None
    message = f"{len(failed)} of the last {len(recent)} {_runs_of(operation)} of {subject} failed; the latest error: {failed[-1].error}"
    transient = sum(1 for r in failed if r.error_class == "transient")
    if transient * 2 >= len(failed):
        message += "; most were a busy or unreachable source: run at a quieter time or raise retry.read.max_elapsed"
    return Recommendation("failures", subject, message)


def _retry_recommendation(operation: str, subject: str, recent: list[HistoryRecord]) -> Recommendation | None:
    retried = [r for r in recent if r.retries > 0]
    if len(retried) < MIN_PREVIOUS or len(retried) / len(recent) < RETRY_RATE:
        return None
    attempts = sum(r.retries for r in retried)
    return Recommendation(
        "retries",
        subject,
        f"{_runs_of(operation)} of {subject} needed retries in {len(retried)} of the last {len(recent)} runs ({attempts} in all): "
        f"the source is often busy or locked; run at a quieter time or raise retry.connect/retry.read max_elapsed",
    )


def build_report(
    records: list[HistoryRecord],
    *,
    last: int = 10,
    operation: str | None = None,
    source: str | None = None,
    history_file: str = "",
    skipped_lines: int = 0,
) -> Report:
    """Analyse ``records`` (any order); ``operation`` and ``source`` (a substring) filter them."""
    selected = sorted(
        (
            r
            for r in records
            if (not operation or r.operation == operation)
            and (not source or source in (r.source or "") or source in (r.target or ""))
        ),
        key=lambda r: r.ended_at,
    )
    groups = _groups(selected)
    trends: list[Trend] = []
    recommendations: list[Recommendation] = []
    by_subject: list[SubjectFailures] = []
    for (kind, subject), runs in sorted(groups.items()):
        recent = runs[-RATE_WINDOW:]
        failed = sum(1 for r in recent if r.outcome == "failed")
        cancelled = sum(1 for r in recent if r.outcome == "cancelled")
        if failed or cancelled:
            last_error = next((r.error for r in reversed(recent) if r.outcome == "failed"), None)
            by_subject.append(SubjectFailures(kind, subject, len(recent), failed, cancelled, last_error))
        trend = compute_trend(kind, subject, runs)
        if trend is not None:
            trends.append(trend)
            latest_good = [r for r in runs if r.outcome == "succeeded"][-1]
            recommendations.extend(_trend_recommendations(trend, latest_good))
        memory = _memory_recommendation(kind, subject, runs[-1])
        if memory is not None:
            recommendations.append(memory)
        if kind == "backup":
            recommendations.extend(_compressor_recommendations(subject, runs))
        for rule in (_failure_recommendation, _retry_recommendation):
            found = rule(kind, subject, recent)
            if found is not None:
                recommendations.append(found)
    total = len(selected)
    succeeded = sum(1 for r in selected if r.outcome == "succeeded")
    failed_total = sum(1 for r in selected if r.outcome == "failed")
    cancelled_total = sum(1 for r in selected if r.outcome == "cancelled")
    failures = FailureSummary(
        runs=total,
        succeeded=succeeded,
        failed=failed_total,
        cancelled=cancelled_total,
        failure_rate=failed_total / total if total else 0.0,
        by_subject=tuple(by_subject),
    )
    return Report(
        history_file=history_file,
        total_runs=total,
        skipped_lines=skipped_lines,
        runs=tuple(reversed(selected[-last:])),
        trends=tuple(trends),
        failures=failures,
        recommendations=tuple(recommendations),
        recorded_runs=len(records),
    )


# -- text output ---------------------------------------------------------------------------------
def _size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _run_line(record: HistoryRecord) -> str:
    when = record.ended_at.replace("T", " ")[:19]
    parts = [f"{when}  {record.operation:<8} {record.outcome:<9} {subject_of(record)}", f"{record.duration_s:.1f} s"]
    if record.rows:
        parts.append(f"{record.rows:,} rows")
    if record.bytes:
        parts.append(f"{record.mb_per_second:.1f} MB/s")
    elif record.rows:
        parts.append(f"{record.rows_per_second:,.0f} rows/s")
    if record.peak_rss_bytes:
        parts.append(f"peak {_size(record.peak_rss_bytes)}")
    if record.compressor:
        parts.append(record.compressor + (f" -> {_size(record.compressed_bytes)}" if record.compressed_bytes else ""))
    line = "  ".join(parts)
    if record.error:
        line += f"\n      {record.error}"
    return line


def _signed(change: float | None) -> str:
    return "" if change is None else f" ({'+' if change >= 0 else '-'}{_percent(change)})"


def render_text(report: Report, last: int) -> list[str]:
    """The report as lines of text."""
    lines = [f"history: {report.history_file} ({report.total_runs} runs)"]
    if report.skipped_lines:
        lines.append(f"  {report.skipped_lines} unreadable line(s) skipped")
    if not report.total_runs:
        lines.append("no runs recorded yet" if not report.recorded_runs else f"none of the {report.recorded_runs} recorded runs matches the filter")
        return lines
    lines += ["", f"recent runs (latest {min(last, len(report.runs))}, newest first):"]
    lines += [f"  {_run_line(record)}" for record in report.runs]
    lines += ["", "trends (latest successful run against the median of the runs before it):"]
    for trend in report.trends:
        head = f"  {trend.operation} {trend.subject}: {trend.runs} successful run(s)"
        moved = trend.latest_throughput > 0 or bool(trend.median_throughput)  # verify moves no rows
        if trend.median_duration_s is None:
            rate = f", {trend.latest_throughput:.1f} {trend.throughput_unit}" if moved else ""
            lines.append(f"{head}; latest {trend.latest_duration_s:.1f} s{rate}")
            continue
        text = f"{head}; duration {trend.latest_duration_s:.1f} s vs {trend.median_duration_s:.1f} s{_signed(trend.duration_change)}"
        if moved:
            text += (
                f"; throughput {trend.latest_throughput:.1f} vs {trend.median_throughput:.1f} "
                f"{trend.throughput_unit}{_signed(trend.throughput_change)}"
            )
        lines.append(text)
    if not report.trends:
        lines.append("  no successful runs")
    f = report.failures
    lines += ["", f"failures: {f.failed} of {f.runs} runs failed ({f.failure_rate:.0%}), {f.cancelled} cancelled"]
    for subject in f.by_subject:
        text = f"  {subject.operation} {subject.subject}: {subject.failed} failed, {subject.cancelled} cancelled of the last {subject.runs}"
        if subject.last_error:
            text += f"; latest error: {subject.last_error}"
        lines.append(text)
    lines += ["", "recommendations:"]
    if report.recommendations:
        lines += [f"  - {r.message}" for r in report.recommendations]
    else:
        lines.append("  none: the recorded runs show no problem")
    return lines


@click.command(name="report")
@click.option("--last", type=click.IntRange(min=1), default=10, show_default=True, help="How many recent runs to list.")
@click.option("--operation", metavar="KIND", help="Only runs of this kind: backup, restore, verify, migrate, ...")
@click.option("--source", metavar="TEXT", help="Only runs whose source or target contains TEXT.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def report_command(ctx: click.Context, last: int, operation: str | None, source: str | None, as_json: bool) -> None:
    """Show recent runs from the history, trends, the failure rate and recommendations."""
    from unibackup.cli import CliState

    state = ctx.find_object(CliState)
    monitoring: dict[str, Any] = attrs.asdict(state.config.monitoring) if state is not None else {}
    path: Path = history_path(monitoring)
    records, skipped = read_history(path, limit=MAX_RECORDS)
    report = build_report(records, last=last, operation=operation, source=source, history_file=str(path), skipped_lines=skipped)
    if as_json:
        click.echo(orjson.dumps(to_dict(report), option=orjson.OPT_INDENT_2).decode())
        return
    for line in render_text(report, last):
        click.echo(line)


@hookimpl
def unibackup_register_commands(cli: Any) -> None:
    cli.add_command(report_command)
