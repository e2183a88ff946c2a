"""Progress bars of the commands that read many bundles: drawn in place, and only on a terminal."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

from twinportal.logging import is_terminal

T = TypeVar("T")


def progress_bar(
    items: Iterable[T], *, stream: Any, unit: str, disable: bool = False, total: int | None = None
) -> tqdm[T]:
    """A bar over ``items`` on ``stream`` (a command's ``self.stderr``, or a plain stream).

    Django's ``OutputWrapper`` ends every write with a newline, which would put each frame of the
    bar on a line of its own, so the bar draws on the stream it wraps. Off a terminal (a pipe, a
    log file, a test) there is no bar: its frames would only be noise there.
    """
    out = getattr(stream, "_out", stream)
    return tqdm(
        items,
        total=total,
        unit=unit,
        file=out,
        disable=disable or not is_terminal(out),
        dynamic_ncols=True,
    )
