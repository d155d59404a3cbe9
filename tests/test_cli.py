"""`manage.py submit`'s pieces that need no server: the progress display and the error shapes.

The command itself is tested end to end in tests/e2e/test_cli.py.
"""

from __future__ import annotations

import dataclasses
import io
import json

from django.core.management.base import OutputWrapper

from catalog.client import Problem, Status, _api_error
from catalog.progress import ProgressReport, clock, progress_line


def status(done: int, failed: int = 0, images: int = 200, *, state: str = "processing") -> Status:
    settled = done + failed
    return Status(
        request_id="6f1c",
        state=state,
        completed=settled == images,
        products=100,
        images=images,
        done=done,
        failed=failed,
        percent=settled * 100 // images,
        result_file=None,
        failures=(),
        created_at=None,
        completed_at=None,
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_with_and_without_bar() -> None:
    assert (
        progress_line(status(101, 3), 12, None, bar_width=10)
        == "[#####-----]  52%  104/200 images  3 failed  00:12"
    )
    assert progress_line(status(200), 75, None, bar_width=4) == "[####] 100%  200/200 images  01:15"
    assert progress_line(status(0, state="pending"), 3, None, bar_width=0) == (
        "  0%  0/200 images  00:03  waiting for a worker"
    )
    assert progress_line(status(50), 10, 30, bar_width=0, note="retrying") == (
        " 25%  50/200 images  00:10  eta 00:30  retrying"
    )
    rerun = dataclasses.replace(status(200), reused=190)
    assert progress_line(rerun, 2, None, bar_width=0) == "100%  200/200 images  190 reused  00:02"


def test_clock() -> None:
    assert [clock(s) for s in (0, 59.9, 61, 3599, 3600, 36061)] == [
        "00:00",
        "00:59",
        "01:01",
        "59:59",
        "1:00:00",
        "10:01:01",
    ]


def test_terminal_redraws_one_line_and_pads_over_a_longer_one() -> None:
    screen = Terminal()
    now = [0.0]
    report = ProgressReport(OutputWrapper(screen), tty=True, timer=lambda: now[0])
    report.update(status(0, state="pending"))
    now[0] = 10.0
    report.update(status(100))
    now[0] = 20.0
    report.update(status(200))
    report.close()
    frames = screen.getvalue().split("\r")[1:]
    assert len(frames) == 3
    assert frames[0].endswith("waiting for a worker")
    assert len(frames[1]) == len(frames[0]), "padded so nothing of the longer line is left behind"
    assert " 50%  100/200 images  00:10  eta 00:10" in frames[1], "eta from the rate seen while polling"
    assert frames[2].startswith("[") and "100%  200/200 images  00:20" in frames[2]
    assert frames[2].endswith("\n")


def test_a_log_gets_a_line_on_change_at_most_every_few_seconds_and_the_last_one() -> None:
    log = io.StringIO()
    now = [0.0]
    report = ProgressReport(OutputWrapper(log), tty=False, timer=lambda: now[0])
    for second, done in [(0, 0), (1, 10), (2, 20), (6, 30), (7, 30), (40, 30), (41, 200)]:
        now[0] = second
        report.update(status(done))
    report.close()
    lines = log.getvalue().splitlines()
    assert [line.split("%  ")[1].split("  ")[0] for line in lines] == [
        "0/200 images",
        "30/200 images",  # 5 s after the first
        "30/200 images",  # unchanged, but 30 s is long enough to say we are alive
        "200/200 images",  # the end is always said
    ]
    assert "\r" not in log.getvalue()


def test_nothing_at_verbosity_zero() -> None:
    log = io.StringIO()
    report = ProgressReport(OutputWrapper(log), tty=True, quiet=True)
    report.update(status(200))
    report.close()
    assert log.getvalue() == ""


def test_error_bodies_of_every_shape() -> None:
    body = {"status": "error", "errors": [{"line": 3, "column": "S. No.", "message": "'x' is bad"}]}
    refused = _api_error(400, json.dumps(body).encode())
    assert [str(p) for p in refused.problems] == ["line 3, column S. No.: 'x' is bad"]
    whole_file = _api_error(
        400, b'{"status": "error", "errors": [{"line": null, "column": null, "message": "empty"}]}'
    )
    assert str(whole_file.problems[0]) == "empty"
    message = _api_error(404, b'{"status": "error", "message": "no request with request_id 1"}')
    assert message.problems == [Problem(None, None, "no request with request_id 1")]
    proxy = _api_error(502, b"<html>\n  <body>Bad   Gateway</body></html>")
    assert str(proxy) == "HTTP 502: <html> <body>Bad Gateway</body></html>"
