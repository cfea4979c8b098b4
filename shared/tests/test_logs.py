"""JSON log lines: the formatter's output for plain records, extras and exceptions."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from clpm_shared.logs import JsonLineFormatter

_PLAIN = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def reference_line(formatter: JsonLineFormatter, record: logging.LogRecord) -> str:
    """The line as first specified: every non-reserved attribute, json.dumps per record."""
    entry: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "service": formatter.service,
        "logger": record.name,
        "event": record.getMessage(),
    }
    for key, value in record.__dict__.items():
        if key not in _PLAIN and not key.startswith("_"):
            entry[key] = value
    if record.exc_info:
        entry["exception"] = formatter.formatException(record.exc_info)
    return json.dumps(entry, default=str, ensure_ascii=False)


def records() -> list[logging.LogRecord]:
    logger = logging.getLogger("clpm.test")
    access = ("127.0.0.1:5555", "GET", "/data/realtime?loopId=FIC-101", "1.1", 200)
    made = [
        logger.makeRecord(
            "uvicorn.access", logging.INFO, "f", 1, '%s - "%s %s HTTP/%s" %d', access, None
        ),
        logger.makeRecord(
            "clpm.test",
            logging.WARNING,
            "f",
            1,
            "Température %s",
            ("élevée",),
            None,
            extra={
                "loop_id": "TIC-205",
                "value": 1.5,
                "when": datetime(2025, 1, 10, tzinfo=UTC),
                "opaque": object(),
                "_private": 1,
            },
        ),
        logger.makeRecord(
            "clpm.test", logging.INFO, "f", 1, "only private", (), None, extra={"_hidden": True}
        ),
    ]
    try:
        raise ValueError("bad point")
    except ValueError:
        made.append(
            logger.makeRecord("clpm.test", logging.ERROR, "f", 1, "failed", (), sys.exc_info())
        )
    return made


def test_lines_match_the_specified_shape_for_every_kind_of_record() -> None:
    formatter = JsonLineFormatter("api-gateway")
    for record in records():
        line = formatter.format(record)
        assert line == reference_line(formatter, record)
        parsed = json.loads(line)
        assert list(parsed)[:5] == ["ts", "level", "service", "logger", "event"]
    extras = json.loads(formatter.format(records()[1]))
    assert extras["event"] == "Température élevée"
    assert extras["loop_id"] == "TIC-205"
    assert extras["when"] == "2025-01-10 00:00:00+00:00"
    assert extras["opaque"].startswith("<object object")
    assert "_private" not in extras
    assert "ValueError: bad point" in json.loads(formatter.format(records()[3]))["exception"]
