"""The simulator's state on disk, so that a restarted simulator continues its trends.

Without it every restart begins the simulation again at its base operating point, and every
trend steps back there. The state (the generator with its loops' process, controller, valve and
random-number states) is written every summary interval and at shutdown to ``STREAM_STATE_FILE``
(mode 0600, replaced atomically), with the tick of the last sample it generated. It is the
process's own file: it is read back only when it was written for the same loops and interval.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

from data_streaming_service.data_generator import ControlLoopDataGenerator

logger = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class SimulatorState:
    generator: ControlLoopDataGenerator
    t_ns: int
    """Tick of the last sample the generator produced."""


def save_state(path: Path, generator: ControlLoopDataGenerator, t_ns: int) -> None:
    """Write the state next to ``path`` and move it into place (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        pickle.dump({"format": FORMAT, "t_ns": t_ns, "generator": generator}, file)
    os.replace(draft, path)


def load_state(path: Path, like: ControlLoopDataGenerator) -> SimulatorState | None:
    """The saved state if there is one for the loops and interval of ``like``, else None."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as file:
            saved = pickle.load(file)  # noqa: S301 - this process's own 0600 file
        generator = saved["generator"]
        t_ns = int(saved["t_ns"])
        usable = (
            saved.get("format") == FORMAT
            and isinstance(generator, ControlLoopDataGenerator)
            and generator.loop_ids == like.loop_ids
            and generator.interval_s == like.interval_s
        )
    except (
        OSError,
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        ImportError,
    ):
        logger.warning("simulator state unreadable; starting afresh", extra={"path": str(path)})
        return None
    if not usable:
        logger.info(
            "simulator state is for other loops or another interval; starting afresh",
            extra={"path": str(path)},
        )
        return None
    return SimulatorState(generator, t_ns)
