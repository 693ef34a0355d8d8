"""Encoding row values as JSON, and back, exactly.

A row line is a JSON array. A value is ``null``, a boolean, a number, a string, or a *tagged
value*: an object with exactly one key naming the tag, for what JSON cannot hold exactly
(``docs/format.md`` lists the tags). Plain JSON objects never appear as values, so a reader can
tell a tag from data without knowing the column types.

The encoder is the hot path of every backup: it serialises a whole row with orjson and only
falls back to a value-by-value walk for the rare rows that need it.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import math
import re
import uuid
import operator
from typing import Any, Callable, Iterable, Sequence

import attrs
import orjson

from .errors import CorruptBackupError

_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1


@attrs.frozen
class RawText:
    """Text whose bytes are not valid UTF-8; kept byte for byte."""

    data: bytes


@attrs.frozen
class JsonText:
    """A JSON document kept as its exact text (key order, spacing, duplicate keys)."""

    text: str


@attrs.frozen
class Tagged:
    """A tagged value for an engine-specific type, passed through to the restore target as is."""

    tag: str
    payload: Any


def _encode_special(value: Any) -> Any:
    """orjson's ``default``: the types orjson cannot write, or must not write untagged."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, datetime.time):
        return {"$time": value.isoformat()}
    if isinstance(value, datetime.timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, RawText):
        return {"$text": base64.b64encode(value.data).decode("ascii")}
    if isinstance(value, JsonText):
        return {"$json": value.text}
    if isinstance(value, Tagged):
        return {value.tag: value.payload}
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot encode a value of type {type(value).__name__}")


def _encode_value_slowly(value: Any) -> Any:
    """The value-by-value path for what orjson rejects or would write lossily."""
    kind = type(value)
    if kind is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return {"$text": base64.b64encode(value.encode("utf-8", "surrogateescape")).decode("ascii")}
        return value
    if kind is float and not math.isfinite(value):
        return {"$float": "nan" if value != value else ("inf" if value > 0 else "-inf")}
    if kind is int and not _INT64_MIN <= value <= _UINT64_MAX:
        return {"$int": str(value)}
    if kind in (list, tuple):
        return {"$array": [_encode_value_slowly(item) for item in value]}
    if kind is dict:  # a JSON document a driver already parsed
        return {"$json": _dumps(value, default=str).decode()}
    return value


_dumps = orjson.dumps
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME


def encode_row(row: Iterable[Any]) -> bytes:
    """One row as one JSON line (without the newline).

    Strings that hold bytes that are not UTF-8 must arrive as :class:`RawText` or as ``str``
    decoded with ``surrogateescape``; both come back as the original bytes.
    """
    return _dumps([_encode_value_slowly(value) for value in row], default=_encode_special, option=_OPTIONS)


_count_none = operator.methodcaller("count", None)
_OPTIONS_LINE = _OPTIONS | orjson.OPT_APPEND_NEWLINE


@attrs.frozen(slots=True)
class EncodedRows:
    """A batch of encoded rows: complete lines, each ending in a newline."""

    data: bytes | bytearray
    rows: int


def encode_batch(rows: Sequence[Sequence[Any]]) -> EncodedRows:
    """Encode a batch of rows (tuples or lists) into newline-terminated lines; see :func:`encode_row`.

    This is the fast path every source should use. It serialises each row with orjson straight
    into one buffer (each row's output is freed at once, so memory stays at about the batch's
    size), then checks the whole batch at once for what orjson writes without asking: NaN and
    ±Infinity become ``null`` (so: no more ``null`` tokens than ``None`` values), lists become
    bare arrays (no more ``[`` than rows) and dicts bare objects (no more ``{`` than the tags we
    wrote). A batch that fails a check, or holds text that is not UTF-8 or an integer beyond 64
    bits, is encoded value by value instead.
    """
    tags = 0

    def special(value: Any) -> Any:
        nonlocal tags
        tags += 1
        return _encode_special(value)

    dumps, options = _dumps, _OPTIONS_LINE
    buffer = bytearray()
    try:
        for row in rows:
            buffer += dumps(row, default=special, option=options)
    except (TypeError, orjson.JSONEncodeError) as error:
        if isinstance(error.__cause__, KeyboardInterrupt):  # a signal landed in ``special``
            raise error.__cause__ from None
        return _encode_batch_slowly(rows)
    if buffer.count(b"[") != len(rows) or buffer.count(b"{") != tags:
        return _encode_batch_slowly(rows)
    nulls = buffer.count(b"null")
    if nulls and nulls != sum(map(_count_none, rows)):
        return _encode_batch_slowly(rows)
    return EncodedRows(buffer, len(rows))


def _encode_batch_slowly(rows: Sequence[Sequence[Any]]) -> EncodedRows:
    buffer = bytearray()
    for row in rows:
        buffer += encode_row(row)
        buffer += b"\n"
    return EncodedRows(buffer, len(rows))


def encode_rows(rows: Sequence[Sequence[Any]]) -> list[bytes]:
    """Encode a batch as a list of lines without newlines (prefer :func:`encode_batch`)."""
    return [encode_row(row) for row in rows]


def _decode_float(payload: Any) -> float:
    if payload not in ("nan", "inf", "-inf"):
        raise ValueError(payload)
    return float(payload)


def _decode_timedelta(payload: Any) -> datetime.timedelta:
    days, seconds, microseconds = payload
    if not all(type(part) is int for part in payload) or not (0 <= seconds < 86_400 and 0 <= microseconds < 1_000_000):
        raise ValueError("not [days, seconds, microseconds] in normal form")
    return datetime.timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _decode_array(payload: Any) -> list[Any]:
    if type(payload) is not list:
        raise ValueError("not a list")
    return [decode_value(item) for item in payload]


# The notations of docs/format.md: a payload the parser would take but a writer never writes
# ("1_000", a week date, a seventh digit of a fraction) is malformed, not read in some other way.
_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DECIMAL_TEXT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|-?s?NaN[0-9]*|-?Infinity")  # str(Decimal)
_OFFSET = r"(?:Z|[-+][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)"
_TIME = rf"[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}(?:\.[0-9]{{1,6}})?"
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME_TEXT = re.compile(rf"[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T{_TIME}{_OFFSET}?")
_TIME_TEXT = re.compile(rf"{_TIME}{_OFFSET}?")


def _text_payload(parse: Callable[[str], Any], pattern: "re.Pattern[str] | None" = None) -> Callable[[Any], Any]:
    """A decoder of a tag whose payload is a string (of ``pattern``, when given): anything else
    is malformed, even where the parser would take it (``int(1.9)``, ``Decimal((0, (1,), 0))``)."""

    def decode(payload: Any) -> Any:
        if type(payload) is not str:
            raise ValueError("the payload is not a string")
        if pattern is not None and pattern.fullmatch(payload) is None:
            raise ValueError(f"{payload[:40]!r} is not in the tag's notation")
        return parse(payload)

    return decode


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "$bytes": lambda payload: binascii.a2b_base64(payload, strict_mode=True),
    "$text": lambda payload: RawText(binascii.a2b_base64(payload, strict_mode=True)),
    "$float": _decode_float,
    "$int": _text_payload(int, _INTEGER_TEXT),
    "$decimal": _text_payload(decimal.Decimal, _DECIMAL_TEXT),
    "$datetime": _text_payload(datetime.datetime.fromisoformat, _DATETIME_TEXT),
    "$date": _text_payload(datetime.date.fromisoformat, _DATE_TEXT),
    "$time": _text_payload(datetime.time.fromisoformat, _TIME_TEXT),
    "$timedelta": _decode_timedelta,
    "$uuid": _text_payload(uuid.UUID, _UUID_TEXT),
    "$array": _decode_array,
    "$json": lambda payload: JsonText(payload) if type(payload) is str else _fail("not a string"),
}


def _fail(reason: str) -> Any:
    raise ValueError(reason)


def decode_value(value: Any) -> Any:
    """Turn one JSON value of a row back into its Python value."""
    if type(value) is not dict:
        if type(value) is list:
            raise CorruptBackupError("a row value is a bare JSON array")
        return value
    if len(value) != 1:
        raise CorruptBackupError("a row value is an object that is not a tagged value")
    ((tag, payload),) = value.items()
    decoder = _DECODERS.get(tag)
    if decoder is None:  # a new tag comes with a new format version, so this is damage
        raise CorruptBackupError(f"a row value has the unknown tag {tag[:40]!r}")
    try:
        return decoder(payload)
    except CorruptBackupError:
        raise
    except Exception as error:  # a tag with a payload of the wrong shape
        raise CorruptBackupError(f"a {tag} value is malformed: {error}") from None


_loads = orjson.loads


def duration_text(value: datetime.timedelta) -> str:
    """``[-]H:MM:SS[.ffffff]`` with as many hours as it takes, never a day field: the notation
    MySQL's TIME and PostgreSQL's interval both read as that many hours (Python writes
    "-2 days, 22:59:59", and PostgreSQL keeps days apart from hours)."""
    total = value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds
    sign = "-" if total < 0 else ""
    seconds, micro = divmod(abs(total), 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{seconds:02d}" + (f".{micro:06d}" if micro else "")


def decode_row(line: bytes) -> list[Any]:
    """One row line back into a list of values; raises :class:`CorruptBackupError`."""
    try:
        row = _loads(line)
    except orjson.JSONDecodeError as error:
        raise CorruptBackupError(f"a row line is not valid JSON ({error})") from None
    if type(row) is not list:
        raise CorruptBackupError("a row line is not a JSON array")
    if b"{" in line or line.find(b"[", 1) >= 0:
        row = [decode_value(value) for value in row]
    return row


def decode_rows(lines: list[bytes], width: int | None = None) -> list[list[Any]]:
    """A batch of row lines back into rows; raises :class:`CorruptBackupError`.

    Each line must be one JSON array on its own (and, with ``width``, hold that many values):
    lines are parsed one by one, never joined, so that no value can span two lines. Only rows
    whose line holds an object or a nested array are walked value by value for tags.
    """
    if not lines:
        return []
    try:
        rows = list(map(_loads, lines))
    except orjson.JSONDecodeError:
        for line in lines:
            decode_row(line)  # names the first bad line
        raise CorruptBackupError("a batch of row lines is not valid JSON") from None
    if set(map(type, rows)) != {list}:
        for line in lines:
            decode_row(line)
        raise CorruptBackupError("a row line is not exactly one JSON array")
    widths = set(map(len, rows))
    if width is not None and widths != {width}:
        bad = next(row for row in rows if len(row) != width)
        raise CorruptBackupError(f"a row has {len(bad)} values, not {width}")
    joined = b"".join(lines)  # one pass in C: no object, and no "[" but each line's own
    if b"{" not in joined and joined.count(b"[") == len(lines):
        return rows
    if len(widths) == 1 and 0 not in widths:
        # column by column: only the columns that hold objects or arrays are walked for tags
        columns = list(zip(*rows))
        tagged = [index for index, column in enumerate(columns) if not set(map(type, column)).isdisjoint((dict, list))]
        for index in tagged:
            columns[index] = tuple(map(decode_value, columns[index]))
        return list(map(list, zip(*columns)))
    for index, line in enumerate(lines):
        if b"{" in line or line.find(b"[", 1) >= 0:
            rows[index] = [decode_value(value) for value in rows[index]]
    return rows
