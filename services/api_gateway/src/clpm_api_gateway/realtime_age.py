"""The age of a cached ``/data/realtime`` answer at answer time, spliced into its JSON.

A realtime answer is cached as rendered JSON (``{"loop_id":…,"ts":…,<fields>…,"age_s":…,
"times":{…}}``); ``age_s`` must be the age at the moment it is served, not when it was
computed. Instead of parsing and re-rendering the whole answer on every hit, the cached bytes
are split once around the ``age_s`` value (remembered per payload, bounded) and each answer is
``head + age + tail``: the same bytes as ``render_json(json.loads(payload) | {"age_s": age})``.
Answers of an unexpected shape take that slow way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import pydantic_core

from clpm_api_gateway.query_parameters import parse_time

_LOOP_ID_PREFIX = b'{"loop_id":"'
_TS_KEY = b',"ts":'
_AGE_KEY = b',"age_s":'
_TIMES_KEY = b',"times":{'
_NUMBER_OR_NULL = re.compile(rb"null|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
SPLIT_MEMORY = 4096
"""Cached answers whose split is remembered (a few hundred bytes each)."""


@dataclass(frozen=True, slots=True)
class AgeSplice:
    """A rendered realtime answer cut around its ``age_s`` value."""

    head: bytes  # up to and including '"age_s":'
    tail: bytes  # from ',"times":{' to the end
    newest: datetime | None  # the answer's ``ts``; None when the loop has no value


@lru_cache(maxsize=SPLIT_MEMORY)
def split_answer(payload: bytes) -> AgeSplice | None:
    """``payload`` cut around ``age_s``; ``None`` when it does not have the expected shape."""
    if not payload.startswith(_LOOP_ID_PREFIX) or not payload.endswith(b"}}"):
        return None
    id_end = payload.find(b'"', len(_LOOP_ID_PREFIX))  # loop ids hold no quotes or escapes
    if id_end < 0 or not payload.startswith(_TS_KEY, id_end + 1):
        return None
    ts_start = id_end + 1 + len(_TS_KEY)
    if payload.startswith(b"null", ts_start):
        newest = None
    elif payload.startswith(b'"', ts_start):
        ts_end = payload.find(b'"', ts_start + 1)
        if ts_end < 0:
            return None
        newest = parse_time(payload[ts_start + 1 : ts_end].decode(), "ts")
    else:
        return None
    # "times" is last and holds only field names and timestamps: the last age_s key is the one
    age_key = payload.rfind(_AGE_KEY)
    if age_key < ts_start:
        return None
    value_start = age_key + len(_AGE_KEY)
    value_end = payload.find(_TIMES_KEY, value_start)
    if value_end < 0 or not _NUMBER_OR_NULL.fullmatch(payload, value_start, value_end):
        return None
    return AgeSplice(payload[:value_start], payload[value_end:], newest)


def with_current_age(payload: bytes, now: datetime) -> bytes:
    """The cached realtime answer with ``age_s`` = ``now`` - ``ts`` (s, 3 decimals)."""
    splice = split_answer(payload)
    if splice is None:
        return _rerendered_with_age(payload, now)
    if splice.newest is None:
        return payload
    age = round((now - splice.newest).total_seconds(), 3)
    return splice.head + pydantic_core.to_json(age) + splice.tail


def _rerendered_with_age(payload: bytes, now: datetime) -> bytes:
    """The general way: parse, set ``age_s``, render again."""
    body = json.loads(payload)
    if body["ts"] is not None:
        body["age_s"] = round((now - parse_time(body["ts"], "ts")).total_seconds(), 3)
    return pydantic_core.to_json(body)
