"""InfluxQL statement text: quoted identifiers, escaped string literals, and every statement
the InfluxQL store sends.

Identifiers are always double-quoted (``"`` and ``\\`` escaped), string literals single-quoted
(``'``, ``\\`` and line breaks escaped), times are integer epoch nanoseconds. Tags are only ever
compared with ``=`` or an anchored regex of literal alternatives (InfluxDB 1.x silently returns
nothing for range comparisons on tags): a batch of raw reads is selected with
``"loop_id" =~ /^(?:a|b|...)$/``, a batch of aggregates with ``"loop_id" = 'a' OR ...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from clpm_shared.timeseries.base import FIELDS, LOOP_TAG, MODE_TAG


def quote_identifier(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def string_literal(value: str) -> str:
    escaped = (
        value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    )
    return f"'{escaped}'"


def source(measurement: str, retention_policy: str | None = None) -> str:
    """``FROM`` target: ``"m"`` or ``"rp"."m"``."""
    if retention_policy:
        return f"{quote_identifier(retention_policy)}.{quote_identifier(measurement)}"
    return quote_identifier(measurement)


def loop_equals(loop_id: str) -> str:
    return f"{quote_identifier(LOOP_TAG)} = {string_literal(loop_id)}"


def any_loop(loop_ids: Sequence[str]) -> str:
    return "(" + " OR ".join(loop_equals(loop_id) for loop_id in loop_ids) + ")"


@lru_cache(maxsize=200_000)
def _regex_literal(value: str) -> str:
    """``value`` matched literally inside an InfluxQL ``/regex/`` (RE2): every character that
    is not a letter or digit escaped (``/`` included, which would end the literal). Cached: a
    poll of 10,000 loops escapes every id again (0.1 s per poll without the cache)."""
    return "".join(c if c.isascii() and c.isalnum() else "\\" + c for c in value)


def loop_in(loop_ids: Sequence[str]) -> str:
    """``"loop_id" =~ /^(?:a|b|...)$/``: the same rows as :func:`any_loop`, for less CPU in
    influxd on large batches (the tag index is matched once instead of once per ``OR`` term).
    Loop ids are validated (letters, digits, ``_ . : - /``) before they get here."""
    alternatives = "|".join(_regex_literal(loop_id) for loop_id in loop_ids)
    return f"{quote_identifier(LOOP_TAG)} =~ /^(?:{alternatives})$/"


def time_window(start_ns: int, end_ns: int) -> str:
    return f"time >= {int(start_ns)} AND time < {int(end_ns)}"


def column_list(names: Sequence[str]) -> str:
    return ", ".join(quote_identifier(name) for name in names)


def select_raw(
    target: str,
    loop_id: str,
    start_ns: int,
    end_ns: int,
    columns: Sequence[str],
    limit: int | None = None,
    offset: int = 0,
) -> str:
    text = (
        f"SELECT {column_list(columns)} FROM {target} "
        f"WHERE {loop_equals(loop_id)} AND {time_window(start_ns, end_ns)}"
    )
    if limit is not None:
        text += f" LIMIT {int(limit)}"
    if offset:
        text += f" OFFSET {int(offset)}"
    return text


def select_raw_many(target: str, loop_ids: Sequence[str], start_ns: int, end_ns: int) -> str:
    return (
        f"SELECT {column_list((*FIELDS, MODE_TAG))} FROM {target} "
        f"WHERE {loop_in(loop_ids)} AND {time_window(start_ns, end_ns)} "
        f"GROUP BY {quote_identifier(LOOP_TAG)}"
    )


def select_latest_field(target: str, loop_id: str, field: str) -> str:
    """Newest value of one field with its real time (``last()`` of one field only: on 1.x,
    ``last(*)`` or several ``last()`` in one statement answer time 0)."""
    return f"SELECT last({quote_identifier(field)}) FROM {target} WHERE {loop_equals(loop_id)}"


def select_minute_counts(target: str, loop_ids: Sequence[str], start_ns: int, end_ns: int) -> str:
    """Samples per minute carrying PV (column ``pv``) per loop: one field only, so influxd
    decodes a third of the blocks that reading the samples would."""
    return (
        f"SELECT count({quote_identifier(FIELDS[0])}) AS {quote_identifier('pv')} FROM {target} "
        f"WHERE {loop_in(loop_ids)} AND {time_window(start_ns, end_ns)} "
        f"GROUP BY time(1m), {quote_identifier(LOOP_TAG)} fill(none)"
    )


def select_sample_totals(target: str, loop_ids: Sequence[str], start_ns: int, end_ns: int) -> str:
    """Samples carrying PV over the window per loop (column ``pv``): one row per loop."""
    return (
        f"SELECT count({quote_identifier(FIELDS[0])}) AS {quote_identifier('pv')} FROM {target} "
        f"WHERE {loop_in(loop_ids)} AND {time_window(start_ns, end_ns)} "
        f"GROUP BY {quote_identifier(LOOP_TAG)}"
    )


def select_latest_field_many(target: str, loop_ids: Sequence[str], field: str) -> str:
    """:func:`select_latest_field` of several loops, one series per loop."""
    return (
        f"SELECT last({quote_identifier(field)}) FROM {target} WHERE {loop_in(loop_ids)} "
        f"GROUP BY {quote_identifier(LOOP_TAG)}"
    )


def select_newest_sample_many(target: str, loop_ids: Sequence[str]) -> str:
    """Newest sample of each of several loops with every field and the Mode (``LIMIT`` applies
    per loop): one statement where :func:`select_latest_field_many` takes one per field."""
    return (
        f"SELECT {column_list((*FIELDS, MODE_TAG))} FROM {target} WHERE {loop_in(loop_ids)} "
        f"GROUP BY {quote_identifier(LOOP_TAG)} ORDER BY time DESC LIMIT 1"
    )


def select_latest_mode_many(target: str, loop_ids: Sequence[str]) -> str:
    """:func:`select_latest_mode` of several loops (``LIMIT`` applies per loop series)."""
    return (
        f"SELECT {column_list((*FIELDS, MODE_TAG))} FROM {target} "
        f"WHERE {loop_in(loop_ids)} AND {quote_identifier(MODE_TAG)} != '' "
        f"GROUP BY {quote_identifier(LOOP_TAG)} ORDER BY time DESC LIMIT 1"
    )


def select_latest_mode(target: str, loop_id: str) -> str:
    """Newest sample that carries a Mode tag (a tag cannot be an argument of ``last()``)."""
    return (
        f"SELECT {column_list((*FIELDS, MODE_TAG))} FROM {target} "
        f"WHERE {loop_equals(loop_id)} AND {quote_identifier(MODE_TAG)} != '' "
        "ORDER BY time DESC LIMIT 1"
    )


def select_edge(target: str, loop_id: str, *, newest: bool) -> str:
    """First (or last) sample of a loop, for its time range."""
    order = "DESC" if newest else "ASC"
    return (
        f"SELECT {column_list(FIELDS)} FROM {target} WHERE {loop_equals(loop_id)} "
        f"ORDER BY time {order} LIMIT 1"
    )


def show_retention_policies(database: str) -> str:
    return f"SHOW RETENTION POLICIES ON {quote_identifier(database)}"


def show_loops(measurement: str) -> str:
    return (
        f"SHOW TAG VALUES FROM {quote_identifier(measurement)} "
        f"WITH KEY = {quote_identifier(LOOP_TAG)}"
    )


_AGGREGATE_FUNCTIONS = {
    "mean": "mean",
    "min": "min",
    "max": "max",
    "count": "count",
    "first": "first",
    "last": "last",
    "std": "stddev",
}


def select_aggregate(target: str, loop_id: str, start_ns: int, end_ns: int, interval_s: int) -> str:
    """Per-bucket statistics of every field; columns named ``<field lower>_<statistic>``."""
    parts = [
        f"{function}({quote_identifier(name)}) AS {quote_identifier(f'{name.lower()}_{stat}')}"
        for name in FIELDS
        for stat, function in _AGGREGATE_FUNCTIONS.items()
    ]
    return (
        f"SELECT {', '.join(parts)} FROM {target} "
        f"WHERE {loop_equals(loop_id)} AND {time_window(start_ns, end_ns)} "
        f"GROUP BY time({int(interval_s)}s) fill(none)"
    )


def select_aggregate_many(
    target: str, loop_ids: Sequence[str], start_ns: int, end_ns: int, interval_s: int
) -> str:
    """:func:`select_aggregate` of several loops, one series per loop (``GROUP BY loop_id``)."""
    parts = [
        f"{function}({quote_identifier(name)}) AS {quote_identifier(f'{name.lower()}_{stat}')}"
        for name in FIELDS
        for stat, function in _AGGREGATE_FUNCTIONS.items()
    ]
    return (
        f"SELECT {', '.join(parts)} FROM {target} "
        f"WHERE {any_loop(loop_ids)} AND {time_window(start_ns, end_ns)} "
        f"GROUP BY time({int(interval_s)}s), {quote_identifier(LOOP_TAG)} fill(none)"
    )


def create_database(name: str) -> str:
    return f"CREATE DATABASE {quote_identifier(name)}"
