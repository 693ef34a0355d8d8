"""``unibackup.toml``: found by ``--config``, then ``UNIBACKUP_CONFIG``, then the current directory.

The file is structured into attrs classes by cattrs. An unknown key or a value of the wrong type
is a :class:`ConfigError` whose one line names the key path (``backup.level``).
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
import typing
from pathlib import Path
from typing import Any

import attrs
import cattrs

from .errors import ConfigError

CONFIG_FILE_NAME = "unibackup.toml"
CONFIG_ENV = "UNIBACKUP_CONFIG"


@attrs.frozen
class PluginsConfig:
    disable: tuple[str, ...] = ()
    allow_only: tuple[str, ...] | None = None  # entry points allowed to load; None: all
    strict: bool = False


@attrs.frozen
class BackupConfig:
    output_dir: str = "."
    compression: str = "zstd"
    level: int | None = None
    batching: str = "adaptive"
    exclude_tables: tuple[str, ...] = ()


@attrs.frozen
class BatchingConfig:
    batch_rows: int = attrs.field(default=1000, validator=attrs.validators.ge(1))  # fixed strategy
    batch_bytes: int = attrs.field(default=256 * 1024, validator=attrs.validators.ge(1024))  # adaptive target
    min_rows: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    max_rows: int = attrs.field(default=10000, validator=attrs.validators.ge(1))
    memory_budget_mb: int = attrs.field(default=512, validator=attrs.validators.ge(16))
    delay: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))

    @max_rows.validator
    def _at_least_min_rows(self, attribute: Any, value: int) -> None:
        if value < self.min_rows:
            raise ValueError(f"'max_rows' must be >= min_rows ({self.min_rows}): {value}")


@attrs.frozen
class RetryPolicyConfig:
    max_attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    base_delay: float = attrs.field(default=0.2, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))
    max_elapsed: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.5, validator=[attrs.validators.ge(0), attrs.validators.le(1)])


@attrs.frozen
class RetryConfig:
    connect: RetryPolicyConfig = RetryPolicyConfig()
    read: RetryPolicyConfig = RetryPolicyConfig()
    write_file: RetryPolicyConfig = RetryPolicyConfig(max_attempts=1)


@attrs.frozen
class LimitsConfig:
    max_line_bytes: int = attrs.field(default=256 * 1024 * 1024, validator=attrs.validators.ge(1024))
    max_decompressed_bytes: int | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.ge(1024)))
    max_ratio: float | None = attrs.field(default=2000.0, validator=attrs.validators.optional(attrs.validators.ge(1)))


@attrs.frozen
class MonitoringConfig:
    enabled: bool = True
    history_file: str | None = None  # default: the user's data directory
    sample_interval: float = attrs.field(default=0.5, validator=attrs.validators.gt(0))
    # fractions of batching.memory_budget_mb: a warning once, then a garbage collection
    memory_warning_ratio: float = attrs.field(default=0.8, validator=[attrs.validators.gt(0), attrs.validators.le(2)])
    memory_gc_ratio: float = attrs.field(default=0.9, validator=[attrs.validators.gt(0), attrs.validators.le(2)])


@attrs.frozen
class PreflightConfig:
    enabled: bool = True
    cache_seconds: float = attrs.field(default=300.0, validator=attrs.validators.ge(0))
    space_margin: float = attrs.field(default=1.2, validator=attrs.validators.ge(1))
    min_free_memory_mb: int = attrs.field(default=64, validator=attrs.validators.ge(0))


@attrs.frozen
class Config:
    """The whole configuration; every section has defaults."""

    plugins: PluginsConfig = PluginsConfig()
    backup: BackupConfig = BackupConfig()
    batching: BatchingConfig = BatchingConfig()
    retry: RetryConfig = RetryConfig()
    limits: LimitsConfig = LimitsConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    preflight: PreflightConfig = PreflightConfig()
    source: dict[str, dict[str, Any]] = attrs.field(factory=dict)  # per-engine settings
    path: str | None = None  # where it was read from


_converter = cattrs.Converter(forbid_extra_keys=True)

_TOML_TYPES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "an array", dict: "a table"}


def _toml_type(value: Any) -> str:
    return next((name for kind, name in _TOML_TYPES.items() if type(value) is kind), type(value).__name__)


def _exactly(kind: type) -> Any:
    """A structure hook that takes a value of ``kind`` as it is: no ``"3"`` for 3, no 1 for true,
    no 3.7 for 3 (cattrs would convert all of these silently)."""

    def structure(value: Any, _: Any) -> Any:
        if kind is float and type(value) is int:
            return float(value)
        if type(value) is not kind:
            raise TypeError(f"expected {_TOML_TYPES[kind]}, got {_toml_type(value)} {value!r}")
        return value

    return structure


for _kind in (str, int, float, bool):
    _converter.register_structure_hook(_kind, _exactly(_kind))


def _structure_tuple(value: Any, type_: Any) -> tuple[Any, ...]:
    # a lone string would otherwise become a tuple of its characters
    if type(value) is not list:
        raise TypeError(f"expected an array, got {_toml_type(value)} {value!r}")
    (item_type, *_) = typing.get_args(type_)
    return tuple(_converter.structure(item, item_type) for item in value)


_converter.register_structure_hook_func(lambda type_: typing.get_origin(type_) is tuple, _structure_tuple)


def _describe(error: BaseException, type_: Any) -> str:
    # an attrs validator's error says which key and why ("'batch_bytes' must be >= 1024: 10")
    if type_ is None and type(error) is ValueError and str(error):
        return f"invalid value: {error}"
    if type(error) is TypeError and str(error).startswith("expected "):
        return str(error)  # from the strict hooks: what was expected and what came
    return cattrs.v.format_exception(error, type_)


def _first_message(error: Exception) -> str:
    messages = cattrs.transform_error(error, path="$", format_exception=_describe) if isinstance(error, cattrs.BaseValidationError) else [str(error)]
    message = messages[0] if messages else str(error)
    # cattrs says "... @ $.backup.level"; we say "backup.level: ..."
    if " @ $" in message:
        text, _, where = message.rpartition(" @ $")
        where = where.lstrip(".")
        # name the key itself: an unknown key, or the one an attrs validator refused
        unknown = re.fullmatch(r"extra fields found \((.*)\)", text)
        if unknown:
            keys = [f"{where}.{key}" if where else key for key in unknown.group(1).split(", ")]
            return f"{keys[0]}: unknown key" + (f" (also {', '.join(keys[1:])})" if keys[1:] else "")
        refused = re.fullmatch(r"invalid value: '(\w+)' (.*)", text)
        if refused:
            return f"{where}.{refused.group(1)}: {refused.group(2)}" if where else f"{refused.group(1)}: {refused.group(2)}"
        return f"{where or '(top level)'}: {text}"
    return message


def parse_config(data: dict[str, Any], path: str | None = None) -> Config:
    """Structure a parsed TOML document; raises :class:`ConfigError` naming the key path."""
    try:
        config = _converter.structure(data, Config)
    except Exception as error:
        where = f" in {path}" if path else ""
        raise ConfigError(f"bad configuration{where}: {_first_message(error)}") from None
    return attrs.evolve(config, path=path)


def plugin_settings(config: Config, section: str, name: str, settings_type: type | None) -> dict[str, Any]:
    """A plugin's table of the configuration (``[source.<name>]``), checked against the attrs
    class the plugin declares: an unknown key or a wrong value is a :class:`ConfigError` naming
    ``source.<name>.<key>``. Returns the settings with the declared defaults filled in; a plugin
    that declares no class gets its table as it is."""
    table = getattr(config, section).get(name, {})
    if settings_type is None:
        return dict(table)
    try:
        structured = _converter.structure(table, settings_type)
    except Exception as error:
        where = f" in {config.path}" if config.path else ""
        message = _first_message(error)
        raise ConfigError(f"bad configuration{where}: {section}.{name}.{message}" if not message.startswith("(") else f"bad configuration{where}: {section}.{name}: {message}") from None
    return attrs.asdict(structured)


def find_config_file(explicit: str | None) -> Path | None:
    """``--config``, then ``UNIBACKUP_CONFIG``, then ``./unibackup.toml``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    local = Path.cwd() / CONFIG_FILE_NAME
    return local if local.is_file() else None


def load_config(explicit: str | None = None) -> Config:
    """Find and read the configuration; defaults when there is no file."""
    path = find_config_file(explicit)
    if path is None:
        return Config()
    try:
        if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode) and not os.path.samefile(path, os.devnull):
            # a pipe would hang and a device never ends; /dev/null is the usual "no settings"
            raise ConfigError(f"the configuration file {str(path)!r} is not a regular file")
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except UnicodeDecodeError as error:
        raise ConfigError(f"the configuration file {str(path)!r} is not UTF-8 text (byte {error.start})") from None
    except FileNotFoundError:
        raise ConfigError(f"the configuration file {str(path)!r} does not exist") from None
    except OSError as error:
        raise ConfigError(f"cannot read the configuration file {str(path)!r}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"the configuration file {str(path)!r} is not valid TOML: {error}") from None
    return parse_config(data, str(path))
