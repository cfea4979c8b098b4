"""InfluxDB line protocol: escaping of names and tag values, and encoding of sample rows.

Used by both InfluxDB backends (``/write`` of the v1 API and the v2 write API). Measurement names
escape commas and spaces; tag keys, tag values and field keys escape commas, equals signs and
spaces. Line breaks cannot be escaped at all, and InfluxDB 1.x keeps backslashes literally (it
never unescapes ``\\``, and a value ending in a backslash does not parse), so both are
refused rather than guessed at. Values written here have passed :mod:`points` validation; the
escaping is defence in depth.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from clpm_shared.timeseries.base import LOOP_TAG, MODE_TAG, RawSeries, normalise_mode
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


def encode_series(measurement: str, series: RawSeries) -> tuple[bytes, int]:
    """Lines of one loop's columnar samples (vectorised with Arrow) and how many there are.

    The same lines as :func:`encode_rows`: NaN fields are left out, samples without any
    finite field are skipped, a mode that is not a valid tag value is left out.
    """
    pv, sp, op = (np.asarray(values, dtype=np.float64) for values in (series.pv, series.sp,
                  series.op))  # fmt: skip
    keep = np.isfinite(pv) | np.isfinite(sp) | np.isfinite(op)
    if not keep.all():
        pv, sp, op = pv[keep], sp[keep], op[keep]
    count = len(pv)
    if count == 0:
        return b"", 0
    mode_text = pc.fill_null(
        pc.binary_join_element_wise(f",{MODE_TAG}=", _mode_tags(series.mode[keep]), ""), ""
    )
    parts = [
        pc.binary_join_element_wise(
            f"{name}=", pc.cast(pa.array(values, mask=np.isnan(values)), pa.string()), ""
        )
        for name, values in (("PV", pv), ("SP", sp), ("OP", op))
    ]
    fields = pc.binary_join_element_wise(*parts, ",", null_handling="skip")
    times = pc.cast(pa.array(series.t_ns[keep], pa.int64()), pa.string())
    lines = pc.binary_join_element_wise(
        escape_measurement(measurement), mode_text,
        f",{LOOP_TAG}={escape_key(series.loop_id)} ", fields, " ", times, "\n", "",
    )  # fmt: skip
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[
        lines.offset : lines.offset + count + 1
    ]
    body = memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
    return bytes(body), count
