"""Array values that a backup keeps in PostgreSQL's array text form, read as nested lists.

The format writes an array that a ``$array`` tag cannot hold exactly (more than one dimension,
another lower bound, elements without a plain JSON form) as PostgreSQL's own text form in a JSON
string (``docs/format.md``). A restore into another engine turns it into a JSON array with
:func:`array_from_text`, so that the target gets a real array and not PostgreSQL's notation.
"""

from __future__ import annotations

import re
from typing import Any

import orjson


class ArrayTextError(ValueError):
    """The text is not an array in PostgreSQL's notation."""


def parse_array_text(text: str) -> list[Any]:
    """``'{{1,2},{NULL,"a b"}}'`` -> ``[['1', '2'], [None, 'a b']]``.

    Elements stay text (``None`` for an unquoted NULL); a dimension decoration such as
    ``[0:1]={...}`` is dropped, since a JSON array has no lower bound.
    """
    position = 0
    if text.startswith("["):
        position = text.find("=")
        if position < 0:
            raise ArrayTextError(f"an array's dimensions have no '=': {text[:40]!r}")
        position += 1
    value, position = _parse_level(text, position)
    if text[position:].strip():
        raise ArrayTextError(f"text after the end of the array: {text[position:position + 40]!r}")
    return value


def _parse_level(text: str, position: int) -> tuple[list[Any], int]:
    if position >= len(text) or text[position] != "{":
        raise ArrayTextError(f"an array starts with '{{': {text[position:position + 40]!r}")
    position += 1
    items: list[Any] = []
    expecting = True  # an element (or the closing brace of an empty level) comes next
    while position < len(text):
        char = text[position]
        if char == "}":
            if expecting and items:
                raise ArrayTextError("an array element is missing before '}'")
            return items, position + 1
        if char == ",":
            if expecting:
                raise ArrayTextError("an array element is missing before ','")
            expecting = True
            position += 1
            continue
        if char.isspace():
            position += 1
            continue
        if not expecting:
            raise ArrayTextError(f"a ',' is missing in the array at {position}")
        if char == "{":
            nested, position = _parse_level(text, position)
            items.append(nested)
        elif char == '"':
            element, position = _parse_quoted(text, position + 1)
            items.append(element)
        else:
            end = position
            while end < len(text) and text[end] not in ",}":
                end += 1
            element = text[position:end].strip()
            items.append(None if element.upper() == "NULL" else element)
            position = end
        expecting = False
    raise ArrayTextError("the array text ends before its closing '}'")


def _parse_quoted(text: str, position: int) -> tuple[str, int]:
    chars: list[str] = []
    while position < len(text):
        char = text[position]
        if char == "\\":
            if position + 1 >= len(text):
                break
            chars.append(text[position + 1])
            position += 2
        elif char == '"':
            return "".join(chars), position + 1
        else:
            chars.append(char)
            position += 1
    raise ArrayTextError("a quoted array element has no closing '\"'")


_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _element(text: str | None, element_logical_type: str | None) -> Any:
    if text is None:
        return None
    if element_logical_type in ("integer", "float", "decimal") and _JSON_NUMBER.fullmatch(text):
        return orjson.Fragment(text)  # a JSON number with the very digits PostgreSQL wrote
    if element_logical_type == "boolean" and text in ("t", "f"):
        return text == "t"
    if element_logical_type == "json":
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        return orjson.Fragment(text)
    return text  # NaN and ±Infinity too: JSON has no number for them


def array_from_text(text: str, element_logical_type: str | None) -> list[Any]:
    """The nested list of a PostgreSQL array text, ready for ``orjson.dumps``: elements typed by
    ``element_logical_type`` (numbers as JSON numbers with their exact digits, booleans as
    booleans, JSON elements as JSON), everything else as its text, NULL as None."""

    def typed(items: list[Any]) -> list[Any]:
        return [typed(item) if isinstance(item, list) else _element(item, element_logical_type) for item in items]

    return typed(parse_array_text(text))
