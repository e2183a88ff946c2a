"""Shared input checks, range flags, result types and table loading for the risk equations.

Impossible inputs (NaN, infinite, negative, unknown category) raise ``ValueError`` naming the field.
Inputs that are possible but outside an equation's validated range are computed and *flagged*: every
result carries ``out_of_range`` (one :class:`RangeFlag` per offending field), ``in_range`` (a bool, or a
bool array shaped like the result) and ``notes`` (free-text caveats such as a missing optional input).
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
#: A number, or an array of numbers that broadcasts against the other inputs.
Numeric = float | int | npt.NDArray[Any] | Sequence[float]
#: True/False or 0/1, scalar or array.
Flag = bool | int | npt.NDArray[Any] | Sequence[bool]

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class RangeFlag:
    """One input field that fell outside the equation's validated range.

    ``n_outside`` counts the offending elements (1 for scalar input).
    """

    field: str
    low: float
    high: float
    n_outside: int

    def __str__(self) -> str:
        return (
            f"{self.field} outside the validated range {self.low:g}–{self.high:g} "
            f"({self.n_outside} value{'s' if self.n_outside != 1 else ''})"
        )


class RiskValue(float):
    """A risk (proportion, 0–1) computed from scalar inputs; behaves as a plain ``float``.

    Attributes
    ----------
    out_of_range : tuple of RangeFlag
        Inputs outside the equation's validated range (empty when all are inside).
    notes : tuple of str
        Caveats that are not range problems.
    """

    out_of_range: tuple[RangeFlag, ...]
    notes: tuple[str, ...]

    def __new__(
        cls, value: float, out_of_range: tuple[RangeFlag, ...] = (), notes: tuple[str, ...] = ()
    ) -> RiskValue:
        obj = super().__new__(cls, value)
        obj.out_of_range = out_of_range
        obj.notes = notes
        return obj

    @property
    def in_range(self) -> bool:
        """True when every input lay inside the validated range."""
        return not self.out_of_range


class RiskArray(np.ndarray[Any, np.dtype[np.float64]]):
    """Risks (proportions, 0–1) computed from array inputs; behaves as a float ``ndarray``.

    ``out_of_range`` and ``notes`` summarise the whole call. ``in_range`` is a bool array of the
    result's shape on the array the equation returns; arrays derived from it (slices, arithmetic)
    keep the summaries but set ``in_range`` to ``None``, because the mask no longer lines up.
    """

    out_of_range: tuple[RangeFlag, ...]
    notes: tuple[str, ...]
    in_range: BoolArray | None

    def __array_finalize__(self, obj: object) -> None:
        self.out_of_range = getattr(obj, "out_of_range", ())
        self.notes = getattr(obj, "notes", ())
        self.in_range = None

    # ndarray pickles only its data; results cross process boundaries (task queues), so the flags
    # travel with them.
    def __reduce__(self) -> tuple[Any, ...]:
        reconstruct, args, state = super().__reduce__()  # type: ignore[misc]  # ndarray returns a 3-tuple
        return reconstruct, args, (state, self.out_of_range, self.notes, self.in_range)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        base, self.out_of_range, self.notes, self.in_range = state
        super().__setstate__(base)


class RiskDict(dict[str, Any]):
    """Several outcomes of one equation; behaves as a plain ``dict`` of outcome → risk.

    Values are floats for scalar input and float arrays for array input.

    Attributes
    ----------
    out_of_range : tuple of RangeFlag
        Inputs outside the validated range.
    in_range : bool or ndarray of bool
        Element-wise: True where every input lay inside the validated range.
    notes : tuple of str
        Caveats that are not range problems.
    model : str
        Which model variant produced the values (e.g. PREVENT "base", "hba1c", "uacr", "full").
    horizon : int
        Prediction horizon in years.
    """

    out_of_range: tuple[RangeFlag, ...]
    in_range: bool | BoolArray
    notes: tuple[str, ...]
    model: str
    horizon: int


def check_choice(field: str, value: object, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ValueError naming ``field``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def as_measurement(field: str, value: Numeric, *, strictly_positive: bool = True) -> FloatArray:
    """Convert a measurement to a float array, rejecting NaN, infinities and impossible signs.

    Raises
    ------
    ValueError
        Naming ``field`` when a value is NaN, infinite, negative, or zero where
        ``strictly_positive`` (a log is taken of it, or zero is not physiological).
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field} must be numeric; got {value!r}") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{field} must be a finite number (no NaN or infinity)")
    if strictly_positive and np.any(arr <= 0):
        raise ValueError(f"{field} must be > 0; got minimum {arr.min():g}")
    if np.any(arr < 0):
        raise ValueError(f"{field} must be >= 0; got minimum {arr.min():g}")
    return arr


def as_indicator(field: str, value: Flag) -> FloatArray:
    """Convert a yes/no input (bool or 0/1) to a float array of 0.0 and 1.0."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field} must be True/False or 0/1; got {value!r}") from exc
    if not np.all((arr == 0.0) | (arr == 1.0)):
        raise ValueError(f"{field} must be True/False or 0/1")
    return arr


def range_flags(
    checks: Mapping[str, tuple[FloatArray, float, float]], shape: tuple[int, ...]
) -> tuple[tuple[RangeFlag, ...], BoolArray]:
    """Flag fields outside their validated range (inclusive bounds).

    Parameters
    ----------
    checks : mapping of field -> (values, low, high)
        Values broadcastable to ``shape``.
    shape : tuple of int
        Shape of the result.

    Returns
    -------
    flags : tuple of RangeFlag
        One per field with at least one value outside; ``n_outside`` counts the affected
        elements of the result.
    in_range : ndarray of bool, shape ``shape``
        True where every field lies inside its range.
    """
    flags: list[RangeFlag] = []
    ok = np.ones(shape, dtype=np.bool_)
    for field, (values, low, high) in checks.items():
        inside = np.broadcast_to((values >= low) & (values <= high), shape)
        n_out = int(inside.size - np.count_nonzero(inside))
        if n_out:
            flags.append(RangeFlag(field, low, high, n_out))
            ok &= inside
    return tuple(flags), ok


def package_risk(
    risk: FloatArray,
    flags: tuple[RangeFlag, ...],
    in_range: BoolArray,
    notes: tuple[str, ...] = (),
) -> RiskValue | RiskArray:
    """Wrap a computed risk as :class:`RiskValue` (0-d input) or :class:`RiskArray`."""
    if risk.ndim == 0:
        return RiskValue(float(risk), flags, notes)
    out = np.asarray(risk, dtype=np.float64).view(RiskArray)
    out.out_of_range = flags
    out.notes = notes
    out.in_range = in_range
    return out


@functools.cache
def data_table(relative_path: str) -> tuple[dict[str, str], ...]:
    """Rows of a CSV file under ``models_engine/data`` (read once per process)."""
    with (DATA_DIR / relative_path).open(encoding="utf-8", newline="") as fh:
        return tuple(csv.DictReader(fh))
