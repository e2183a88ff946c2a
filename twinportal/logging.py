"""Structured (JSON lines) logging with the request id attached to every record.

Servers and pipes get one JSON object per line; a person at a terminal (a management command)
gets readable lines instead, written around any progress bar on the screen.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from typing import Any, TextIO

from tqdm import tqdm

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "request_id",
}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = (
                    value if isinstance(value, str | int | float | bool | None) else str(value)
                )
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload)


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (a closed or odd stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class ReadableFormatter(logging.Formatter):
    """``12:03:04 WARNING patients.fhir.importer: bundle import failed (import_batch=7, problems=2)``."""

    def format(self, record: logging.LogRecord) -> str:
        when = (
            dt.datetime.fromtimestamp(record.created, tz=dt.UTC).astimezone().strftime("%H:%M:%S")
        )
        extra = ", ".join(
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        )
        request = getattr(record, "request_id", "-")
        line = f"{when} {record.levelname} {record.name}: {record.getMessage()}"
        if request != "-":
            line += f" [request {request}]"
        if extra:
            line += f" ({extra})"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class ConsoleHandler(logging.StreamHandler[TextIO]):
    """The configured formatter (JSON) off a terminal; readable lines on one.

    On a terminal, progress bars are cleared before the line is written and drawn again after it,
    so a log line never lands in the middle of a bar's frame.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self.readable = ReadableFormatter()

    def format(self, record: logging.LogRecord) -> str:
        if is_terminal(self.stream):
            return self.readable.format(record)
        return super().format(record)

    def emit(self, record: logging.LogRecord) -> None:
        if not is_terminal(self.stream):
            super().emit(record)
            return
        try:
            message = self.format(record)
            with tqdm.get_lock():  # type: ignore[no-untyped-call]  # tqdm leaves it unannotated
                # tqdm.write() clears only bars drawn on the very stream it is given; a command's
                # bar may draw on a wrapper of it, so every bar on screen is cleared here
                bars = [b for b in list(getattr(tqdm, "_instances", ())) if not b.disable]
                for bar in bars:
                    bar.clear(nolock=True)
                self.stream.write(message + self.terminator)
                self.flush()
                for bar in bars:
                    bar.refresh(nolock=True)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
