"""Cells of a historian export: numbers (decimal point or comma), quality flags, mode values.

Historians write a status text where a value could not be read (``Bad Input``, ``I/O Timeout``,
``No Data``, ``Shutdown``, ...): such a cell is bad quality, not an error. Any other text in a
value column is an error. Non-finite numbers (``NaN``, ``inf``) count as bad quality too.

Quality columns: empty cells and the texts ``good``/``ok``/``valid``/``g`` (any case, ``Good``
and OPC UA's ``Good_...`` included) are good; a number is an OPC DA quality code, good when
its two top bits of the low byte are set (``q & 0xC0 == 0xC0``, e.g. 192); anything else
(``bad``, ``uncertain``, ``Bad_CommFailure``, ``0``) is bad and the value is not stored.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
NON_FINITE = r"(?i)^\s*[-+]?(nan|inf|infinity)\s*$"
STATUS_TEXT = (
    r"(?i)^\s*(bad.*|i/o timeout|no data|no_data|shutdown|comm fail.*|calc failed|"
    r"scan off|scan timeout|not connected|pt created|configure|out of serv.*|invalid.*|"
    r"error|over range|under range|no sample|arc off-line|failed)\s*$"
)
GOOD_TEXT = r"(?i)^\s*(good.*|ok|valid|g)?\s*$"
MODE_ALIASES: dict[str, str] = {
    "AUT": "AUT", "AUTO": "AUT", "AUTOMATIC": "AUT", "A": "AUT",
    "MAN": "MAN", "MANUAL": "MAN", "M": "MAN",
    "CAS": "CAS", "CASCADE": "CAS", "C": "CAS", "REMOTE": "CAS", "RSP": "CAS",
}  # fmt: skip
MODE_CODES: tuple[str, ...] = ("AUT", "MAN", "CAS")
"""Mode of each code (index) in the int8 arrays of mode changes; -1 = unknown."""

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


def _mask(array: pa.Array | pa.ChunkedArray) -> BoolArray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def parse_numbers(
    column: pa.Array | pa.ChunkedArray, *, decimal_comma: bool
) -> tuple[FloatArray, BoolArray, BoolArray]:
    """Values of a column, and masks of status-text (bad) cells and of invalid-text cells.

    Returns ``(values, bad, invalid)``: ``values`` is NaN for empty, bad and invalid cells.
    """
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        values = np.array(
            pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        )
        bad = np.isinf(values)
        values[bad] = np.nan
        return values, bad, np.zeros(len(values), dtype=bool)
    text = column.cast(pa.string())
    if decimal_comma:
        text = pc.replace_substring(text, ",", ".")
    try:
        numbers = pc.cast(text, pa.float64())
        invalid = np.zeros(len(text), dtype=bool)
        bad = np.zeros(len(text), dtype=bool)
    except pa.ArrowInvalid:
        numeric = _mask(pc.match_substring_regex(text, NUMBER))
        present = _mask(pc.is_valid(text)) & _mask(pc.not_equal(pc.utf8_trim_whitespace(text), ""))
        non_finite = _mask(pc.match_substring_regex(text, NON_FINITE))
        bad = present & ~numeric & (_mask(pc.match_substring_regex(text, STATUS_TEXT)) | non_finite)
        invalid = present & ~numeric & ~bad
        numbers = pc.cast(pc.if_else(pa.array(numeric), text, pa.scalar(None, pa.string())),
                          pa.float64())  # fmt: skip
    values = np.array(
        pc.fill_null(numbers, np.nan).to_numpy(zero_copy_only=False), dtype=np.float64
    )
    infinite = np.isinf(values)
    if infinite.any():
        bad = bad | infinite
        values[infinite] = np.nan
    if np.isnan(values).any():
        # "nan" parses as a number: it is a reading the historian could not make
        bad = bad | (np.isnan(values) & _mask(pc.match_substring_regex(text, NON_FINITE)))
    return values, bad, invalid


def good_quality(column: pa.Array | pa.ChunkedArray) -> BoolArray:
    """True where a quality cell is good (see the module docstring)."""
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        codes = np.asarray(
            pc.fill_null(pc.cast(column, pa.float64()), 192.0).to_numpy(zero_copy_only=False)
        )
        whole = np.nan_to_num(codes, nan=0.0).astype(np.int64)
        return np.asarray((whole & 0xC0) == 0xC0, dtype=bool)
    text = column.cast(pa.string())
    good = _mask(pc.match_substring_regex(pc.fill_null(text, ""), GOOD_TEXT))
    numeric = _mask(pc.match_substring_regex(text, r"^\s*\d{1,5}\s*$"))
    if numeric.any():
        codes = pc.cast(pc.if_else(pa.array(numeric), text, "0"), pa.int64()).to_numpy(
            zero_copy_only=False
        )
        good = good | (numeric & ((codes & 0xC0) == 0xC0))
    return good


def parse_modes(
    column: pa.Array | pa.ChunkedArray, mode_map: dict[str, str] | None
) -> tuple[npt.NDArray[np.int8], BoolArray]:
    """Mode code of each cell (index into :data:`MODE_CODES`, -1 = empty) and a mask of cells
    whose value the tag map's ``mode_map`` (or, without one, AUT/MAN/CAS and their usual
    spellings) does not know."""
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    if pa.types.is_floating(column.type):  # 1.0 -> "1", as the mode map spells it
        text = pc.replace_substring_regex(text, r"\.0+$", "")
    lookup = mode_map if mode_map else MODE_ALIASES
    keys = list(lookup)
    if not mode_map:
        text = pc.utf8_upper(text)
    index = pc.index_in(text, value_set=pa.array(keys, pa.string()))
    codes_of_keys = np.array([MODE_CODES.index(lookup[key]) for key in keys], dtype=np.int8)
    found = np.asarray(pc.fill_null(index, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    codes = np.where(found >= 0, codes_of_keys[np.maximum(found, 0)], -1).astype(np.int8)
    present = _mask(pc.is_valid(text)) & _mask(pc.not_equal(pc.fill_null(text, ""), ""))
    return codes, present & (found < 0)
