"""A notifier in its own process, for restart tests: one pass over the outbox, then exit.

``python -m tests.harness.notifier_child <database url> <settings json> <now iso> <name>``
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime

from clpm_shared.config import AlertSettings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.notify import Notifier


async def _pass(url: str, settings: AlertSettings, now: datetime, name: str) -> None:
    engine = create_engine(url)
    notifier = Notifier(settings, create_session_factory(engine), name=name)
    try:
        await notifier.run_once(now)
    finally:
        await notifier.aclose()
        await engine.dispose()


if __name__ == "__main__":
    url, values, now, name = sys.argv[1:5]
    asyncio.run(_pass(url, AlertSettings(**json.loads(values)), datetime.fromisoformat(now), name))
