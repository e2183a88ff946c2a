"""What the commands print: readable lines around the progress bar on a terminal, JSON elsewhere."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator

import pytest
from django.core.management import call_command

from tests.conftest import SYNTHEA
from twinportal.logging import ConsoleHandler, JsonFormatter, RequestIdFilter


class Terminal(io.StringIO):
    """A stream that says it is a terminal, keeping everything written to it."""

    def isatty(self) -> bool:
        return True


def record(message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("patients.fhir.importer", logging.INFO, __file__, 1, message, (), None)
    rec.__dict__.update(extra)
    return rec


def handler_on(stream: io.StringIO) -> ConsoleHandler:
    handler = ConsoleHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    return handler


def test_it_writes_json_lines_when_the_stream_is_not_a_terminal() -> None:
    out = io.StringIO()
    handler_on(out).handle(record("bundle imported", import_batch=3, status="succeeded"))
    line = json.loads(out.getvalue())
    assert (line["message"], line["import_batch"], line["status"]) == (
        "bundle imported",
        3,
        "succeeded",
    )


def test_it_writes_a_readable_line_on_a_terminal() -> None:
    out = Terminal()
    handler_on(out).handle(record("bundle imported", import_batch=3, status="succeeded"))
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d INFO patients\.fhir\.importer: bundle imported "
        r"\(import_batch=3, status=succeeded\)\n",
        out.getvalue(),
    )


@pytest.fixture
def importer_logs_to() -> Iterator[Callable[[io.StringIO], None]]:
    """Send the importer's log records to a stream through the configured handler class."""
    logger = logging.getLogger("patients.fhir.importer")
    handlers: list[logging.Handler] = []

    def attach(stream: io.StringIO) -> None:
        handlers.append(handler_on(stream))
        logger.addHandler(handlers[-1])

    yield attach
    for handler in handlers:
        logger.removeHandler(handler)


@pytest.mark.django_db
def test_on_a_terminal_log_lines_never_land_inside_a_progress_bar_frame(importer_logs_to) -> None:
    terminal = Terminal()
    importer_logs_to(terminal)
    call_command("import_fhir", *map(str, SYNTHEA[:2]), stdout=io.StringIO(), stderr=terminal)
    screen = terminal.getvalue()
    assert "2/2" in screen  # the bar was drawn on the terminal
    assert '{"time"' not in screen
    logged = [line for line in screen.split("\n") if "bundle imported" in line]
    assert len(logged) == 2
    for line in logged:
        # what remains visible on that row after the bar was cleared (\r returns to column 0)
        visible = line.rsplit("\r", 1)[-1]
        assert re.match(r"\d\d:\d\d:\d\d INFO patients\.fhir\.importer: bundle imported", visible)
    # the bar redraws in place (carriage returns), not one frame per line
    assert screen.count("\n") <= len(logged) + 2


@pytest.mark.django_db
def test_off_a_terminal_the_commands_draw_no_progress_bar() -> None:
    stderr = io.StringIO()
    call_command("import_fhir", str(SYNTHEA[0]), stdout=io.StringIO(), stderr=stderr)
    assert "%|" not in stderr.getvalue() and "\r" not in stderr.getvalue()
