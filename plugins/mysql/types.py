"""MySQL column types: their portable logical types, options, and how to read them exactly."""

from __future__ import annotations

import re
from typing import Any

from .connection import quote

INTEGER_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}
TEXT_TYPES = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext"})
BYTES_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
SPATIAL_TYPES = frozenset({
    "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
    "geometrycollection", "geomcollection",
})
_LOGICAL = {
    "decimal": "decimal",
    "numeric": "decimal",
    "float": "float",
    "double": "float",
    "real": "float",
    "bit": "integer",
    "year": "integer",
    "date": "date",
    "datetime": "datetime",
    "timestamp": "datetime_tz",  # stored as a UTC instant; read with the session at +00:00
    "time": "interval",  # MySQL TIME is a signed duration (-838:59:59 .. 838:59:59)
    "enum": "enum",
    "set": "text",  # MySQL's own text form, members joined by commas
    "json": "json",
    "uuid": "uuid",  # MariaDB 10.7+
}
_LABEL = re.compile(r"'((?:[^'\\]|''|\\.)*)'")
_NUMBERS = re.compile(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")


def logical_type(data_type: str, is_json: bool = False) -> str:
    """The portable logical type of a column, from ``information_schema.COLUMNS.DATA_TYPE``."""
    data_type = data_type.lower()
    if is_json:
        return "json"
    if data_type in INTEGER_BITS:
        return "integer"
    if data_type in TEXT_TYPES:
        return "text"
    if data_type in BYTES_TYPES:
        return "bytes"
    return _LOGICAL.get(data_type, "other")


def enum_labels(column_type: str) -> list[str]:
    """The members of an ENUM or SET column type, in declaration order."""
    inside = column_type[column_type.find("(") + 1 : column_type.rfind(")")]
    labels = []
    for match in _LABEL.finditer(inside):
        text = match.group(1).replace("''", "'")
        labels.append(re.sub(r"\\(.)", r"\1", text))
    return labels


def column_options(column: dict[str, Any], is_json: bool) -> dict[str, Any]:
    """What a restore into another engine needs to know about a column, beyond its logical type."""
    data_type = str(column["DATA_TYPE"]).lower()
    column_type = str(column["COLUMN_TYPE"]).lower()
    extra = str(column.get("EXTRA") or "").lower()
    options: dict[str, Any] = {}
    if data_type in INTEGER_BITS:
        options["bits"] = INTEGER_BITS[data_type]
    if "unsigned" in column_type:
        options["unsigned"] = True
    if "zerofill" in column_type:
        options["zerofill"] = True
    if data_type == "bit":
        match = _NUMBERS.search(column_type)
        options["bit_length"] = int(match.group(1)) if match else 1
        options["unsigned"] = True
    if data_type in ("decimal", "numeric"):
        options["precision"] = int(column["NUMERIC_PRECISION"])
        options["scale"] = int(column["NUMERIC_SCALE"] or 0)
    if data_type == "float":
        options["single"] = True
    if (data_type in TEXT_TYPES or data_type in BYTES_TYPES) and column.get("CHARACTER_MAXIMUM_LENGTH") is not None and not is_json:
        options["length"] = int(column["CHARACTER_MAXIMUM_LENGTH"])
        if data_type in ("char", "binary"):
            options["fixed"] = True
    if data_type in ("datetime", "timestamp", "time") and column.get("DATETIME_PRECISION") is not None:
        options["fsp"] = int(column["DATETIME_PRECISION"])
    if data_type in ("enum", "set"):
        options["labels"] = enum_labels(str(column["COLUMN_TYPE"]))
        if data_type == "set":
            options["set"] = True
    if column.get("CHARACTER_SET_NAME") and not is_json:
        options["charset"] = column["CHARACTER_SET_NAME"]
        options["collation"] = column["COLLATION_NAME"]
    if "auto_increment" in extra:
        options["auto_increment"] = True
    if "invisible" in extra:
        options["invisible"] = True
    if "on update" in extra:
        options["on_update"] = extra[extra.index("on update") + len("on update"):].strip()
    if data_type in SPATIAL_TYPES:
        options["spatial"] = True
    return options


def column_default(column: dict[str, Any], mariadb: bool) -> str | None:
    """The default as SQL text (None: no default, or NULL).

    MariaDB already reports SQL (quoted literals, ``NULL`` for none); MySQL reports the bare
    value of a literal and marks expressions ``DEFAULT_GENERATED``.
    """
    default = column.get("COLUMN_DEFAULT")
    if default is None:
        return None
    default = str(default)
    if mariadb:
        return None if default == "NULL" else default
    extra = str(column.get("EXTRA") or "").upper()
    data_type = str(column["DATA_TYPE"]).lower()
    if "DEFAULT_GENERATED" in extra or data_type in INTEGER_BITS or data_type in ("decimal", "numeric", "float", "double", "real"):
        return default
    return "'" + default.replace("\\", "\\\\").replace("'", "''") + "'"


def is_generated(column: dict[str, Any]) -> bool:
    """A computed column: its values are rebuilt by the DDL and never stored in the rows."""
    extra = str(column.get("EXTRA") or "").upper()
    return any(word in extra for word in ("VIRTUAL", "STORED", "PERSISTENT", "ROW START", "ROW END")) or (
        str(column.get("IS_GENERATED") or "NEVER").upper() == "ALWAYS"
    )


def read_expression(name: str, data_type: str) -> str:
    """The SELECT expression that reads a column exactly.

    FLOAT is widened to DOUBLE (exact; the server prints FLOAT with only 6 digits); BIT is read
    as an unsigned integer.
    """
    data_type = data_type.lower()
    if data_type == "float":
        return f"{quote(name)} + 0E0"
    if data_type == "bit":
        return f"CAST({quote(name)} AS UNSIGNED)"
    return quote(name)
