"""The ``unibackup`` command line.

Every failure a user can cause ends with one line on stderr (``unibackup: error: ...``) and the
exit code of its class; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from typing import Any, Callable, Iterator

import attrs
import click
import orjson

from . import __version__
from .config import Config, load_config
from .display import counted, human_size
from .errors import EXIT_FAILED, EXIT_INVALID_BACKUP, EXIT_USAGE, ErrorClass, UnibackupError, UsageError
from .models import to_dict
from .operations import classify

log = logging.getLogger("unibackup")


@attrs.define
class CliState:
    """What the root command hands its subcommands."""

    config_path: str | None
    debug: bool
    quiet: bool
    _config: Config | None = None
    _service: Any = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def service(self, **overrides: Any) -> Any:
        if self._service is None:
            from .service import BackupService

            interactive = not self.quiet and sys.stderr.isatty()
            self._service = BackupService(self.config, interactive=interactive)
        return self._service


def _emit_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str).decode())


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
password_file_option = click.option(
    "--password-file", metavar="FILE", help="Read the server password from the first line of FILE (never shown in any output)."
)


def _set_password_file(state: "CliState", path: str | None) -> None:
    """Hand ``--password-file`` to every source plugin as its ``password_file`` setting."""
    if not path:
        return
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        # said now, whatever the source: a typo must not pass because this one needs no password
        raise UsageError(f"the password file {path!r} does not exist or cannot be read")
    service = state.service()
    settings = dict(service.config.source)
    for entry in service.hooks.sources:
        settings_type = getattr(entry.implementation, "settings_type", None)
        if settings_type is None or "password_file" in attrs.fields_dict(settings_type):
            settings[entry.name] = {**settings.get(entry.name, {}), "password_file": path}
    service.config = attrs.evolve(service.config, source=settings)


class _Group(click.Group):
    """Adds plugin commands lazily, so that a broken plugin cannot break ``--help``."""

    _plugins_loaded = False
    #: the commands each plugin added, by plugin name
    plugin_commands: dict[str, list[str]] = {}

    def _load_plugin_commands(self, ctx: click.Context) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        try:
            state = ctx.find_object(CliState)
            config = state.config if state else load_config(None)
            from .hooks import Hooks
            from .manager import get_plugin_manager

            host = get_plugin_manager(disabled=config.plugins.disable, allow_only=config.plugins.allow_only)
            self.plugin_commands = Hooks(host).register_commands(self)
        except UnibackupError as error:
            log.warning("plugin commands unavailable: %s", error.user_line())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            self._load_plugin_commands(ctx)
            command = super().get_command(ctx, name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands(ctx)
        return super().list_commands(ctx)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="unibackup")
@click.option("--config", "config_path", metavar="FILE", help="Configuration file (default: $UNIBACKUP_CONFIG, ./unibackup.toml).")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
@click.option("-q", "--quiet", is_flag=True, help="No progress display, warnings only.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool, quiet: bool) -> None:
    """Logical database backups: one compressed, checksummed, versioned JSON-Lines file."""
    state = ctx.find_object(CliState)
    if state is None:
        ctx.obj = CliState(config_path, debug, quiet)
    else:  # plugin commands were looked up first
        state.config_path, state.debug, state.quiet = config_path, debug, quiet


def _configure_logging(debug: bool, quiet: bool) -> None:
    root = logging.getLogger("unibackup")
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("unibackup: %(levelname)s: %(name)s: %(message)s" if debug else "unibackup: %(levelname)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    root.propagate = False


pass_state = click.make_pass_decorator(CliState)


@cli.command()
@click.argument("source")
@click.option("-o", "--output-dir", metavar="DIR", help="Where to write the backup (default: backup.output_dir, or .).")
@click.option("--compression", metavar="NAME", help="Compressor: zstd (default), gzip, brotli, none, or a plugin's.")
@click.option("--level", type=int, help="Compression level.")
@click.option("--batching", metavar="NAME", help="Batching strategy: adaptive (default) or fixed.")
@click.option("--table", "tables", multiple=True, metavar="T", help="Back up only this table (repeatable).")
@click.option("--exclude-table", "exclude_tables", multiple=True, metavar="T", help="Leave this table out (repeatable).")
@password_file_option
@json_option
@pass_state
def backup(state: CliState, source: str, output_dir: str | None, compression: str | None, level: int | None, batching: str | None, tables: tuple[str, ...], exclude_tables: tuple[str, ...], password_file: str | None, as_json: bool) -> None:
    """Back up SOURCE (a SQLite file, sqlite:///path, or a server URL) into a new file.

    The path of the new backup is the last line of standard output.
    """
    _set_password_file(state, password_file)
    result = state.service().create_backup(
        source, output_dir, compression=compression, level=level, batching=batching, tables=tables, exclude_tables=exclude_tables
    )
    if as_json:
        data = to_dict(result)
        data.pop("header", None)
        _emit_json(data)
        return
    if not state.quiet:
        m = result.metrics
        click.echo(
            f"{counted(result.trailer.tables, 'table')}, {counted(result.trailer.rows, 'row')}, {human_size(result.compression.bytes_in)} -> "
            f"{human_size(result.compression.bytes_out)} ({result.compression.compressor}) in {m.duration_s:.2f} s",
            err=True,
        )
    click.echo(result.path)


@cli.command()
@click.argument("backup_file", metavar="BACKUP")
@click.argument("target")
@click.option("--table", "tables", multiple=True, metavar="T", help="Restore only this table (repeatable).")
@click.option("--force", is_flag=True, help="Replace a non-empty target (only after the restore succeeded).")
@click.option("--allow-lossy", is_flag=True, help="Restore even where the target engine cannot hold a value exactly.")
@password_file_option
@json_option
@pass_state
def restore(state: CliState, backup_file: str, target: str, tables: tuple[str, ...], force: bool, allow_lossy: bool, password_file: str | None, as_json: bool) -> None:
    """Restore BACKUP into TARGET (a new SQLite file, or a server URL).

    Into another engine, a per-column fidelity report is printed before anything is written.
    """
    _set_password_file(state, password_file)
    with _naming_the_invalid_backup(backup_file):
        result = state.service().restore_backup(
            backup_file, target, tables=tables, force=force, allow_lossy=allow_lossy, on_plan=None if as_json else _print_fidelity_report
        )
    if as_json:
        _emit_json(to_dict(result))
        return
    for skipped in result.skipped:
        click.echo(f"skipped: {skipped}", err=True)
    click.echo(f"restored {counted(result.tables, 'table')}, {counted(result.rows, 'row')} into {result.target} in {result.metrics.duration_s:.2f} s")


@contextlib.contextmanager
def _naming_the_invalid_backup(backup_file: str) -> Iterator[None]:
    """Damage found by a command other than verify reads as verify's does: "BACKUP is invalid: ..."."""
    try:
        yield
    except UnibackupError as error:
        if error.error_class is not ErrorClass.CORRUPT_INPUT:
            raise
        raise UnibackupError(f"{backup_file} is invalid: {error.message}", hint=error.hint, error_class=error.error_class) from error


def _print_fidelity_report(plan: Any) -> None:
    """The cross-engine report, on stderr, before anything is written."""
    click.echo(f"fidelity report ({plan.source_engine} -> {plan.target_engine}):", err=True)
    width = max((len(f"{m.table}.{m.column}") for m in plan.mappings), default=10)
    for m in plan.mappings:
        note = f"  {m.note}" if m.note else ""
        click.echo(f"  {f'{m.table}.{m.column}':<{width}}  {m.source_type or '(none)'} -> {m.target_type}  {m.fidelity}{note}", err=True)


@cli.command()
@click.argument("backup_file", metavar="BACKUP")
@click.option("--level", type=click.Choice(["quick", "full", "deep"]), default="full", show_default=True, help="How thorough.")
@json_option
@pass_state
def verify(state: CliState, backup_file: str, level: str, as_json: bool) -> None:
    """Check BACKUP without a database server; exit code 3 when it is invalid."""
    report = state.service().verify_backup(backup_file, level)
    if as_json:
        _emit_json(to_dict(report))
    else:
        for finding in report.findings:
            if report.valid or finding is not report.findings[0]:
                click.echo(f"unibackup: {finding.severity.upper()}: {finding.message}", err=True)  # as the log's warnings
        if report.valid:
            click.echo(f"{backup_file}: valid ({level}): {counted(report.tables, 'table')}, {counted(report.rows, 'row')}")
    if not report.valid:
        if not as_json:
            first = report.findings[0].message if report.findings else "invalid"
            click.echo(f"unibackup: error: {backup_file} is invalid: {first}", err=True)
        sys.exit(EXIT_INVALID_BACKUP)


@cli.command(name="list")
@click.argument("directory", default=".", metavar="[DIR]")
@json_option
@pass_state
def list_(state: CliState, directory: str, as_json: bool) -> None:
    """List the backups in DIR (default: the current directory), newest first."""
    summaries = state.service().list_backups(directory)
    if as_json:
        _emit_json([to_dict(s) for s in summaries])
        return
    if not summaries:
        click.echo(f"no backups in {directory}", err=True)
        return
    width = max(len(os.path.basename(s.path)) for s in summaries)
    engine_width = max(len(s.engine or "") for s in summaries)
    for s in summaries:
        name = os.path.basename(s.path).ljust(width)
        if s.error:
            click.echo(f"{name}  {human_size(s.size):>10}  unreadable: {s.error}")
        else:
            click.echo(f"{name}  {human_size(s.size):>10}  {s.created_at}  {(s.engine or '').ljust(engine_width)}  {counted(s.tables, 'table'):>10}  {s.source}")


@cli.command()
@click.argument("backup_file", metavar="BACKUP")
@json_option
@pass_state
def info(state: CliState, backup_file: str, as_json: bool) -> None:
    """Show what BACKUP holds: source, options, tables and row counts."""
    with _naming_the_invalid_backup(backup_file):
        details = state.service().inspect_backup(backup_file)
    if as_json:
        _emit_json(to_dict(details))
        return
    header = details.header
    click.echo(f"file:        {details.path} ({human_size(details.size)})")
    click.echo(f"format:      unibackup version {details.format_version}" + (f" (migrated by {', '.join(details.migrated_by)})" if details.migrated_by else ""))
    click.echo(f"compression: {details.compressor}")
    click.echo(f"created:     {header.created_at or 'unknown'} by unibackup {header.tool_version or '(version unknown)'}")
    engine, version = header.source.engine or "engine unknown", header.source.server_version or ""
    # "PostgreSQL 15.4 (Debian ...)" names its engine already
    click.echo(f"source:      {header.source.identity or 'unknown'} ({version if version.lower().startswith(engine) else f'{engine} {version}'.strip()})")
    complete = details.trailer is not None
    click.echo(f"complete:    {'yes' if complete else 'NO (no trailer)'}")
    if details.trailer:
        click.echo(f"totals:      {counted(details.trailer.tables, 'table')}, {counted(details.trailer.rows, 'row')}, {human_size(details.trailer.bytes)} uncompressed")
    for table in header.schema.tables:
        rows = details.table_rows.get(table.qualified_name, "?")
        click.echo(f"  {table.qualified_name}: {rows} rows, {len(table.columns)} columns")
    kinds: dict[str, int] = {}
    for obj in header.schema.objects:
        kinds[obj.kind] = kinds.get(obj.kind, 0) + 1
    if kinds:
        click.echo("objects:     " + ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items())))


@cli.command()
@click.argument("source")
@json_option
@pass_state
def estimate(state: CliState, source: str, as_json: bool) -> None:
    """Estimate the rows of SOURCE and the size of its backup with each compressor."""
    result = state.service().estimate(source)
    if as_json:
        _emit_json(to_dict(result))
        return
    click.echo(f"{result.source}: {counted(result.tables, 'table')}, about {counted(result.rows, 'row')}, {human_size(result.source_bytes)} of data")
    for name, size in sorted(result.estimated_backup_bytes.items(), key=lambda item: item[1]):
        click.echo(f"  {name:>8}: about {human_size(size)}")


@cli.command()
@click.argument("source")
@click.option("-o", "--output-dir", metavar="DIR", help="The directory a backup would go to (default: backup.output_dir, or .).")
@click.option("--compression", metavar="NAME", help="The compressor the space estimate assumes (default: backup.compression).")
@json_option
@pass_state
def check(state: CliState, source: str, output_dir: str | None, compression: str | None, as_json: bool) -> None:
    """Run the preflight checks of a backup of SOURCE alone; exit code 1 when one fails.

    The source opens and is readable, passes its health check, the output directory takes a new
    file, its disk has room for the estimated backup, and memory is available.
    """
    report = state.service().check_source(source, output_dir, compression=compression)
    if as_json:
        _emit_json(report.to_dict())
    else:
        for result in report.checks:
            click.echo(f"{'ok' if result.ok else 'FAILED':<7} {result.name:<17} {result.detail}")
    if not report.ok:
        if not as_json:
            first = report.failed[0]
            click.echo(f"unibackup: error: {report.source}: check {first.name!r} failed: {first.detail}", err=True)
        sys.exit(EXIT_FAILED)


@cli.command()
@click.option("--all", "show_all", is_flag=True, help="Also show blocked, skipped and failed plugins, and the hooks.")
@click.option("--hook", metavar="NAME", help="Only plugins implementing this hook.")
@json_option
@pass_state
def plugins(state: CliState, show_all: bool, hook: str | None, as_json: bool) -> None:
    """List the plugins, their versions and what they provide."""
    service = state.service()
    if hook is not None:
        known = sorted(name for name in dir(service.host.manager.hook) if name.startswith("unibackup_"))
        hook = hook if hook.startswith("unibackup_") else f"unibackup_{hook}"
        if hook == "unibackup_" or hook not in known:
            raise UsageError(f"unknown hook {hook!r}; known: {', '.join(known)}")
    rows = []
    provides: dict[str, list[str]] = {}
    for registry_name in ("sources", "compressors", "batching_strategies", "validators", "migrators", "listeners"):
        registry = getattr(service.hooks, registry_name)
        for entry in registry:
            provides.setdefault(entry.plugin, []).append(f"{registry.kind}:{entry.name}")
    cli._load_plugin_commands(click.get_current_context())
    for plugin, commands in cli.plugin_commands.items():
        provides.setdefault(plugin, []).extend(f"command:{name}" for name in commands)
    for status in service.host.statuses:
        if not show_all and status.status != "loaded":
            continue
        if hook and hook not in status.hooks:
            continue
        row = to_dict(status)
        row["provides"] = provides.get(status.name, [])
        rows.append(row)
    if as_json:
        _emit_json(rows)
        return
    for row in rows:
        line = f"{row['name']:<12} {row['status']:<8} {row['origin']:<12} {row['distribution'] or '':<20} {row['version'] or '':<10} {', '.join(row['provides'])}"
        if row["reason"]:
            line += f"  ({row['reason']})"
        click.echo(line.rstrip())
        if show_all and row["hooks"]:
            click.echo(f"{'':<12} hooks: {', '.join(row['hooks'])}")


_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


def main(argv: list[str] | None = None) -> None:
    """The console script: run the CLI, turn every failure into one line and an exit code."""
    args = argv if argv is not None else sys.argv[1:]
    debug = "--debug" in args
    _configure_logging(debug, "-q" in args or "--quiet" in args)
    try:
        cli.main(args=argv, prog_name="unibackup", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("unibackup: error: cancelled", err=True)
        sys.exit(130)
    except _NO_ARGS_IS_HELP as error:  # plain `unibackup`: the help, not an error
        click.echo(error.ctx.get_help() if error.ctx is not None else error.format_message())
        sys.exit(0)
    except click.ClickException as error:
        message = error.format_message()
        if isinstance(error, click.UsageError) and error.ctx is not None:
            message = f"{message} (see '{error.ctx.command_path} --help')"
        click.echo(f"unibackup: error: {' '.join(message.split())}", err=True)
        sys.exit(EXIT_USAGE if isinstance(error, click.UsageError) else error.exit_code)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except (Exception, KeyboardInterrupt) as error:
        classified = classify(error)
        if debug:
            traceback.print_exc()
        click.echo(f"unibackup: error: {classified.user_line()}", err=True)
        sys.exit(classified.exit_code)
    sys.exit(0)
