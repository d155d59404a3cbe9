"""The README's first-run and API examples, run as written against a real stack.

Two substitutions only, because the test stack is not `make run`: its address (a free port, not
127.0.0.1:8000) and where the repository is (the commands run in a scratch folder, so they do not
write sample-catalogue.csv into the checkout).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.e2e

README = (REPO / "README.md").read_text(encoding="utf-8")
MARKER = "<!-- tests/e2e/test_readme.py runs this block as written -->"


def shell_block_after(text: str, marker: str) -> str:
    """The ```sh block that follows ``marker``."""
    found = re.search(re.escape(marker) + r"\s*```sh\n(.*?)```", text, re.S)
    assert found, f"no ```sh block after {marker!r}"
    return found.group(1)


def as_here(command: str, stack: Stack) -> str:
    command = command.replace("http://127.0.0.1:8000", stack.base_url)
    return command.replace(".venv/bin/python manage.py", f"{sys.executable} {REPO / 'manage.py'}")


def run(command: str, stack: Stack, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_first_run_in_the_readme_works_as_written(embedded_stack: Stack, tmp_path: Path) -> None:
    line = next(
        x for x in README.splitlines() if x.startswith("APP_ENV=development .venv/bin/python manage.py demo")
    )
    done = run(as_here(line, embedded_stack), embedded_stack, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The demo worked" in done.stdout
    page = re.search(r"See it in the browser: (\S+)", done.stdout)
    assert page and page.group(1).startswith(embedded_stack.base_url + "/requests/")
    assert embedded_stack.get(page.group(1)).status == 200
    assert (tmp_path / "sample-catalogue-result.csv").is_file()


def test_the_api_examples_in_the_readme_work_as_written(embedded_stack: Stack, tmp_path: Path) -> None:
    block = as_here(shell_block_after(README, MARKER), embedded_stack)
    done = run(block, embedded_stack, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    accepted = json.loads((tmp_path / "accepted.json").read_text())
    assert accepted["status"] == "accepted"
    status = embedded_stack.wait_complete(accepted["request_id"])
    assert status["status"] == "completed", status["errors"]
    progress = {key: n for key, n in status["progress"].items() if key != "reused"}  # earlier runs' images
    assert progress == {
        "products": 2,
        "images": 3,
        "done": 3,
        "failed": 0,
        "cancelled": 0,
        "percent": 100,
    }
    # The submit example, on the CSV the block wrote.
    submit = next(x for x in README.splitlines() if x.startswith(".venv/bin/python manage.py submit"))
    done = run(as_here(submit.split("#")[0], embedded_stack), embedded_stack, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Done: 3 images of 2 products" in done.stdout
    # What the README shows it prints, but for the port: 8000 there, one digit more or less here.
    longer = len(str(embedded_stack.port)) - len("8000")
    shown = re.search(
        r"# Uploading catalogue.csv \((\d+) bytes\).*# Result CSV: catalogue-result.csv \((\d+) bytes\)",
        README,
        re.S,
    )
    assert shown, "the README shows what submit prints"
    uploaded, result = (int(n) for n in shown.groups())
    assert f"Uploading catalogue.csv ({uploaded + 3 * longer} bytes)" in done.stdout  # 3 URLs with a port
    assert f"Result CSV: catalogue-result.csv ({result + 6 * longer} bytes)" in done.stdout  # and 3 outputs
    assert (tmp_path / "catalogue-result.csv").is_file()


def test_the_examples_in_docs_api_work_as_written(embedded_stack: Stack, tmp_path: Path) -> None:
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    upload = run(as_here(blocks[0], embedded_stack), embedded_stack, tmp_path)
    assert upload.returncode == 0, upload.stderr
    assert json.loads(upload.stdout)["status"] == "accepted"
    status = run(as_here(blocks[1], embedded_stack), embedded_stack, tmp_path)
    assert status.returncode == 0, status.stderr
    request_id = json.loads(status.stdout)["request_id"]
    assert embedded_stack.wait_complete(request_id)["status"] == "completed"
