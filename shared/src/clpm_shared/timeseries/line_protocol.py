"""InfluxDB line protocol: escaping of names and tag values, and encoding of sample rows.

Used by both InfluxDB backends (``/write`` of the v1 API and the v2 write API). Measurement names
escape commas and spaces; tag keys, tag values and field keys escape commas, equals signs and
spaces. Line breaks cannot be escaped at all, and InfluxDB 1.x keeps backslashes literally (it
never unescapes ``\\``, and a value ending in a backslash does not parse), so both are
refused rather than guessed at. Values written here have passed :mod:`points` validation; the
escaping is defence in depth.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from clpm_shared.timeseries.base import (
    LOOP_TAG,
    MODE_TAG,
    FloatArray,
    IntArray,
    RawSeries,
    normalise_mode,
)
from clpm_shared.timeseries.points import SampleRow


def _refuse_unescapable(text: str, what: str) -> None:
    if not text:
        raise ValueError(f"{what} must not be empty")
    if "\n" in text or "\r" in text:
        raise ValueError(f"{what} must not contain a line break: {text[:40]!r}")
    if "\\" in text:
        raise ValueError(f"{what} must not contain a backslash: {text[:40]!r}")


def escape_measurement(name: str) -> str:
    _refuse_unescapable(name, "measurement")
    return name.replace(",", "\\,").replace(" ", "\\ ")


def escape_key(text: str, what: str = "tag") -> str:
    """Escape a tag key, tag value or field key (commas, equals signs, spaces)."""
    _refuse_unescapable(text, what)
    return text.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def encode_line(
    measurement: str,
    tags: Iterable[tuple[str, str]],
    fields: Iterable[tuple[str, float]],
    t_ns: int,
) -> str:
    """One line: ``measurement,tag=v,... field=1.5,... t_ns`` (tags sorted, floats as repr)."""
    tag_text = "".join(
        f",{escape_key(key)}={escape_key(value)}" for key, value in sorted(tags) if value != ""
    )
    field_text = ",".join(f"{escape_key(key, 'field')}={value!r}" for key, value in fields)
    if not field_text:
        raise ValueError("a line needs at least one field")
    return f"{escape_measurement(measurement)}{tag_text} {field_text} {int(t_ns)}"


def encode_rows(measurement: str, rows: Iterable[SampleRow]) -> list[str]:
    """Lines of the seed schema: tags ``loop_id`` and ``Mode`` (when known), fields PV/SP/OP."""
    head = escape_measurement(measurement)
    lines: list[str] = []
    for row in rows:
        tags = f",{MODE_TAG}={escape_key(row.mode)}" if row.mode else ""
        tags += f",{LOOP_TAG}={escape_key(row.loop_id)}"  # sorted: "Mode" < "loop_id"
        values = [
            f"{name}={float(value)!r}"
            for name, value in (("PV", row.pv), ("SP", row.sp), ("OP", row.op))
            if value is not None
        ]
        lines.append(f"{head}{tags} {','.join(values)} {row.t_ns}")
    return lines


def _mode_tags(modes: npt.NDArray[np.object_]) -> pa.Array:
    """The ``Mode`` tag value of each sample (null: left out), normalising each distinct mode
    once rather than each sample's."""
    try:
        encoded = pa.array(modes, pa.string()).dictionary_encode()
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text: one by one
        return pa.array([normalise_mode(mode) for mode in modes.tolist()], pa.string())
    names = pa.array([normalise_mode(m) for m in encoded.dictionary.to_pylist()], pa.string())
    return names.take(encoded.indices)


def _text(values: FloatArray) -> pa.Array:
    """Arrow's shortest round-trip text of each float (null where NaN)."""
    return pc.cast(pa.array(values, mask=np.isnan(values)), pa.string())


def _data(lines: pa.Array) -> memoryview:
    """The bytes of a string array's values, one after the other (no copy)."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[
        lines.offset : lines.offset + len(lines) + 1
    ]
    return memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


FIELD_NAMES = ("PV", "SP", "OP")
_NEWLINE = pa.scalar("\n", pa.string())
_NOTHING = pa.scalar("", pa.string())
MIN_RUN_LINES = 64
"""A block whose runs (same series key, same fields present) are shorter than this on average
is encoded sample by sample: the per-run calls would cost more than they save."""


def encode_series(measurement: str, series: RawSeries) -> tuple[bytes, int]:
    """Lines of one loop's columnar samples (vectorised with Arrow) and how many there are.

    The same lines as :func:`encode_rows`: NaN and infinite fields are left out, samples
    without any finite field are skipped, a mode that is not a valid tag value is left out.
    """
    chunks, count = encode_series_chunks(measurement, series)
    return b"".join(chunks), count


def encode_series_chunks(measurement: str, series: RawSeries) -> tuple[list[memoryview], int]:
    """The lines of :func:`encode_series` in pieces to be joined (without copying them first).

    The block is cut into runs of samples with the same mode and the same fields present;
    each run's series key is formatted once, and so is a field that holds one value over the
    whole run (a set point that did not move), so that only the changing fields and the times
    are formatted per sample. A block of short runs is formatted sample by sample.
    """
    pv, sp, op = (_finite_or_nan(values) for values in (series.pv, series.sp, series.op))
    keep = ~(np.isnan(pv) & np.isnan(sp) & np.isnan(op))
    t_ns, modes = series.t_ns, series.mode
    if not keep.all():
        pv, sp, op, t_ns, modes = pv[keep], sp[keep], op[keep], t_ns[keep], modes[keep]
    count = len(pv)
    if count == 0:
        return [], count
    head = escape_measurement(measurement)
    loop_tag = f",{LOOP_TAG}={escape_key(series.loop_id)} "
    columns = (pv, sp, op)
    missing = np.isnan(pv) | (np.isnan(sp) << 1) | (np.isnan(op) << 2)
    times = pc.cast(pa.array(t_ns, pa.int64()), pa.string())
    starts = _run_starts(modes, missing)
    if starts is None or (len(starts) + 1) * MIN_RUN_LINES > count:
        mode_text = pc.fill_null(
            pc.binary_join_element_wise(f",{MODE_TAG}=", _mode_tags(modes), ""), ""
        )
        fields = pc.binary_join_element_wise(
            *(pc.binary_join_element_wise(f"{name}=", _text(values), "")
              for name, values in zip(FIELD_NAMES, columns, strict=True)),
            ",", null_handling="skip",
        )  # fmt: skip
        lines = pc.binary_join_element_wise(head, mode_text, loop_tag, fields, " ", times, "\n", "")
        return [_data(lines)], count
    bounds = np.array([0, *starts.tolist(), count])
    first, last = bounds[:-1], bounds[1:] - 1
    fields = [_run_fields(values, missing >> bit & 1, first, last) for bit, values in
              enumerate(columns)]  # fmt: skip
    keys: dict[str | None, str] = {}
    chunks = []
    for run, (start, end) in enumerate(itertools.pairwise(bounds.tolist())):
        mode = normalise_mode(modes[start])
        key = keys.get(mode)
        if key is None:
            key = keys[mode] = f"{head},{MODE_TAG}={mode}{loop_tag}" if mode else head + loop_tag
        pieces: list[pa.Scalar | pa.Array] = []
        text = key
        separator = ""
        for name, (constant, texts) in zip(FIELD_NAMES, fields, strict=True):
            value = constant[run]
            if value == "":  # field missing in this run
                continue
            text += f"{separator}{name}="
            separator = ","
            if value is None:  # changes within the run: one text a sample
                pieces += [_literal(text), texts.slice(start, end - start)]
                text = ""
            else:
                text += value
        pieces += [_literal(f"{text} "), times.slice(start, end - start), _NEWLINE, _NOTHING]
        chunks.append(_data(pc.binary_join_element_wise(*pieces)))
    return chunks, count


def _finite_or_nan(values: npt.ArrayLike) -> FloatArray:
    """``values`` as float64 with +-inf as NaN (left out, as for a ``Point``): influxd refuses
    a line holding ``inf``, and with it the line's finite fields."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    infinite = np.isinf(values)
    return np.where(infinite, np.nan, values) if infinite.any() else values


@functools.lru_cache(maxsize=4096)
def _literal(text: str) -> pa.Scalar:
    """``text`` as an Arrow scalar, kept: Arrow takes microseconds to convert a Python string,
    more than joining a run of a hundred lines."""
    return pa.scalar(text, pa.string())


def _run_fields(
    values: FloatArray, missing: npt.NDArray[np.int_], first: IntArray, last: IntArray
) -> tuple[list[str | None], pa.Array]:
    """One field over the runs ``first[i]..last[i]``: its text where it holds one value over
    the run ("" where it is missing, None where it changes), and each sample's text when any
    run needs them."""
    bits = values.view(np.int64)  # bit for bit: -0.0 is not the same value as 0.0
    changes = np.concatenate(([0], np.cumsum(bits[1:] != bits[:-1])))
    steady = changes[last] == changes[first]
    absent = missing[first].astype(bool)
    runs_of_one_value = steady & ~absent
    one_value = pc.cast(pa.array(values[first[runs_of_one_value]]), pa.string()).to_pylist()
    constant: list[str | None] = [None] * len(first)
    for run, text in zip(np.flatnonzero(runs_of_one_value).tolist(), one_value, strict=True):
        constant[run] = text
    for run in np.flatnonzero(absent).tolist():
        constant[run] = ""
    changing = ~steady & ~absent
    texts = pc.cast(pa.array(values), pa.string()) if changing.any() else pa.array([], pa.string())
    return constant, texts


def _run_starts(modes: npt.NDArray[np.object_], missing: npt.NDArray[np.int_]) -> IntArray | None:
    """Where a new run (another mode object or other fields present) starts; None when the
    modes cannot be compared as a whole."""
    try:
        changed = np.asarray(modes[1:] != modes[:-1], dtype=bool)
    except (TypeError, ValueError):
        return None
    if changed.shape != missing[1:].shape:
        return None
    changed |= missing[1:] != missing[:-1]
    starts: IntArray = np.flatnonzero(changed) + 1
    return starts
