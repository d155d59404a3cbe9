"""`manage.py submit` as a person runs it: a subprocess against a real web server and worker."""

from __future__ import annotations

import csv
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.e2e.test_pipeline import photo
from tests.support.imageserver import ImageServer
from tests.support.stack import REPO, Stack, free_port

pytestmark = pytest.mark.e2e


# Python leaves SIGINT ignored when it starts with it ignored (a `make test &` or nohup wrapper does
# that): the child resets it to the default, so its own KeyboardInterrupt handler is installed.
WITH_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def client_env(stack: Stack) -> dict[str, str]:
    """A client machine's: where the server is (PORT), and nothing of the server's settings."""
    server_only = (
        "APP_ENV",
        "VAR_DIR",
        "SECRET_KEY",
        "WEBHOOK_SECRET",
        "DATABASE_URL",
        "DJANGO_SETTINGS_MODULE",
    )
    return {k: v for k, v in stack.env.items() if k not in server_only}


def submit_command(*args: str) -> list[str]:
    return [sys.executable, "-c", WITH_SIGINT, sys.executable, "manage.py", "submit", *args]


def submit(stack: Stack, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """No --server: the command finds the stack from PORT in its environment, as under `make run`;
    and no APP_ENV or secret key: it needs none of the server's settings."""
    return subprocess.run(
        submit_command(*args),
        check=False,
        cwd=REPO,
        env=client_env(stack),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as out:
        csv.writer(out).writerows([["S. No.", "Product Name", "Input Image Urls"], *rows])
    return path


def images(server: ImageServer, count: int) -> list[str]:
    prefix = uuid.uuid4().hex
    return [server.add(f"{prefix}/{n}.jpg", photo((64 + n, 48), "JPEG")) for n in range(count)]


def test_submit_waits_and_writes_the_result_csv(
    embedded_stack: Stack, image_server: ImageServer, tmp_path: Path
) -> None:
    a, b, c = images(image_server, 3)
    source = write_csv(tmp_path / "chairs.csv", [["1", "Chair", f"{a},{b}"], ["2", "Table", c]])

    run = submit(embedded_stack, str(source))

    assert run.returncode == 0, run.stderr + run.stdout
    assert run.stderr == ""
    assert "Accepted: request " in run.stdout
    assert re.search(r"^100%  3/3 images  \d\d:\d\d$", run.stdout, re.MULTILINE), "plain lines off a TTY"
    assert "\r" not in run.stdout
    assert "Done: 3 images of 2 products" in run.stdout
    result = tmp_path / "chairs-result.csv"
    assert f"Result CSV: {result}" in run.stdout
    rows = list(csv.reader(result.open()))
    assert rows[0][-1] == "Output Image Urls"
    outputs = [url for row in rows[1:] for url in row[3].split(",")]
    assert len(outputs) == 3
    for url in outputs:
        assert embedded_stack.get(url).status == 200, url

    again = submit(embedded_stack, str(source))
    assert again.returncode == 2
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert "Uploading" not in again.stdout, "refused before anything is sent"


def test_a_refused_csv_names_every_problem(
    embedded_stack: Stack, image_server: ImageServer, tmp_path: Path
) -> None:
    (url,) = images(image_server, 1)
    source = write_csv(tmp_path / "broken.csv", [["1", "Chair", url], ["x", "Table", url], ["3", "", url]])

    run = submit(embedded_stack, str(source))

    assert run.returncode == 2, run.stderr + run.stdout
    assert "line 3, column S. No.: " in run.stderr
    assert "line 4, column Product Name: " in run.stderr
    assert not (tmp_path / "broken-result.csv").exists()


def test_a_failed_image_is_named_with_its_reason(
    embedded_stack: Stack, image_server: ImageServer, tmp_path: Path
) -> None:
    (good,) = images(image_server, 1)
    missing = image_server.url(f"{uuid.uuid4().hex}/missing.jpg")
    source = write_csv(tmp_path / "lamps.csv", [["1", "Lamp", good], ["2", "Rug", missing]])

    run = submit(embedded_stack, str(source), "--output", str(tmp_path / "out.csv"))

    assert run.returncode == 3, run.stderr + run.stdout
    assert "1 of 2 images done, 1 failed" in run.stdout
    failure = re.search(rf"^  line 3: {re.escape(missing)} — (.+)$", run.stdout, re.MULTILINE)
    assert failure and "404" in failure.group(1), run.stdout
    rows = list(csv.reader((tmp_path / "out.csv").open()))
    assert rows[2][3] == "", "the failed image's slot is empty"


def test_no_wait_then_follow_by_request_id(
    embedded_stack: Stack, image_server: ImageServer, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "rugs.csv", [["1", "Rug", ",".join(images(image_server, 2))]])

    run = submit(embedded_stack, str(source), "--no-wait", "--quality", "70", "--output-format", "webp")
    assert run.returncode == 0, run.stderr + run.stdout
    request_id = re.search(r"Accepted: request (\S+)", run.stdout)
    assert request_id, run.stdout
    assert f"--request-id {request_id.group(1)}" in run.stdout
    assert not (tmp_path / "rugs-result.csv").exists()
    assert ".venv/bin/python manage.py submit --request-id" in run.stdout

    # The printed command works when pasted into a shell, as it is (no APP_ENV of our own).
    follow = re.search(r"^Follow it: (.+)$", run.stdout, re.MULTILINE)
    assert follow, run.stdout
    env = {k: v for k, v in embedded_stack.env.items() if k != "APP_ENV"}
    later = subprocess.run(
        ["bash", "-c", follow.group(1)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert later.returncode == 0, later.stderr + later.stdout
    outputs = list(csv.reader((tmp_path / "rugs-result.csv").open()))[1][3].split(",")
    assert [url.rsplit(".", 1)[1] for url in outputs] == ["webp", "webp"]


def test_options_refused_by_the_server(
    embedded_stack: Stack, image_server: ImageServer, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "a.csv", [["1", "Chair", images(image_server, 1)[0]]])
    run = submit(embedded_stack, str(source), "--scale", "2")
    assert run.returncode == 2
    assert "scale: must be greater than 0 and at most 1" in run.stderr


def test_quality_options_reach_the_server(
    embedded_stack: Stack, image_server: ImageServer, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "q.csv", [["1", "Chair", images(image_server, 1)[0]]])
    run = submit(embedded_stack, str(source), "--quality", "auto7")
    assert run.returncode == 2
    assert "quality: must be a whole number from 1 to 100, or auto" in run.stderr
    run = submit(
        embedded_stack, str(source), "--quality", "auto", "--quality-target", "0.99", "--max-bytes", "90000"
    )
    assert run.returncode == 0, run.stderr + run.stdout
    request_id = re.search(r"Accepted: request (\S+)", run.stdout)
    assert request_id, run.stdout
    options = embedded_stack.status(request_id.group(1))["options"]
    assert (options["quality"], options["quality_target"], options["max_bytes"]) == ("auto", 0.99, 90000)


def test_server_down_is_one_clear_line(embedded_stack: Stack, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "a.csv", [["1", "Chair", "https://img.example.com/a.jpg"]])
    server = f"http://127.0.0.1:{free_port()}"

    run = submit(embedded_stack, str(source), "--server", server)

    assert run.returncode == 1
    assert run.stderr.strip() == f"error: cannot reach the server at {server}: connection refused"


def test_ctrl_c_leaves_the_request_running_and_says_how_to_follow_it(
    embedded_stack: Stack, tmp_path: Path
) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers: the image hangs
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/slow.jpg"
        source = write_csv(tmp_path / "slow.csv", [["1", "Chair", url]])
        proc = subprocess.Popen(
            submit_command(str(source)),
            cwd=REPO,
            env=client_env(embedded_stack),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "0/1 images" in line:
                    break
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, stderr
    assert "keeps running on the server" in stderr
    assert re.search(r"--request-id [0-9a-f-]{36} --output \S+slow-result\.csv", stderr), stderr
