"""Production is safe by default: no development convenience there, no secret in the repository."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from catalog import health
from config.celery import MALLOC_TUNABLES, worker_environment

REPO = Path(__file__).resolve().parents[1]
# Variables a developer's shell (or `make test`) may have set that would change what is checked here.
_OURS = (
    "APP_ENV",
    "DEBUG",
    "REQUIRE_AUTH",
    "SECRET_KEY",
    "WEBHOOK_SECRET",
    "SECURE_",
    "MEDIA_URL",
    "ALLOWED_",
)


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The README's "Deploying to production" variables, and nothing else of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.update(
        APP_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="images.example.com",
        PUBLIC_BASE_URL="https://images.example.com",
        WEBHOOK_SECRET="whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        METRICS_TOKEN=secrets.token_urlsafe(24),
        VAR_DIR=str(tmp_path),
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )


def test_the_documented_production_settings_pass_the_deploy_check(tmp_path: Path) -> None:
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEBUG", "true", "DEBUG=true is refused in production"),
        ("REQUIRE_AUTH", "false", "REQUIRE_AUTH=false is refused in production"),
        ("SECRET_KEY", "", "SECRET_KEY must be set in production"),
        ("SECURE_HSTS_PRELOAD", "true", "SECURE_HSTS_PRELOAD=true needs SECURE_HSTS_INCLUDE_SUBDOMAINS=true"),
        ("MEDIA_URL", "media", "MEDIA_URL='media' must be a path or URL ending in '/'"),
    ],
)
def test_development_conveniences_are_refused_in_production(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    result = manage(production_env(tmp_path, **{variable: value}), "check")
    assert result.returncode != 0
    assert message in result.stderr


def test_hsts_covers_this_host_only_unless_asked(tmp_path: Path) -> None:
    show = (
        "from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)"
    )
    assert manage(production_env(tmp_path), "shell", "--no-imports", "-c", show).stdout.split() == [
        "31536000",
        "False",
        "False",
    ]
    asked = production_env(tmp_path, SECURE_HSTS_INCLUDE_SUBDOMAINS="true", SECURE_HSTS_PRELOAD="true")
    assert manage(asked, "shell", "--no-imports", "-c", show).stdout.split() == ["31536000", "True", "True"]


def test_production_does_not_serve_media_from_django(tmp_path: Path) -> None:
    show = (
        "from django.urls import resolve, Resolver404\n"
        "try:\n resolve('/media/results/x.csv'); print('served')\n"
        "except Resolver404: print('not served')"
    )
    assert (
        manage(production_env(tmp_path), "shell", "--no-imports", "-c", show).stdout.strip() == "not served"
    )
    development = {**production_env(tmp_path), "APP_ENV": "development"}
    assert manage(development, "shell", "--no-imports", "-c", show).stdout.strip() == "served"


def test_development_secrets_are_made_once_per_machine_and_kept_private(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    show = "from django.conf import settings as s; print(s.SECRET_KEY, s.WEBHOOK_SECRET)"
    first = manage(
        {**env, "APP_ENV": "development", "VAR_DIR": str(tmp_path / "a")}, "shell", "--no-imports", "-c", show
    )
    again = manage(
        {**env, "APP_ENV": "development", "VAR_DIR": str(tmp_path / "a")}, "shell", "--no-imports", "-c", show
    )
    other = manage(
        {**env, "APP_ENV": "development", "VAR_DIR": str(tmp_path / "b")}, "shell", "--no-imports", "-c", show
    )
    key, webhook = first.stdout.split()
    assert len(key) >= 50 and webhook.startswith("whsec_")
    assert again.stdout == first.stdout, "kept, not made anew on every start"
    assert set(other.stdout.split()).isdisjoint({key, webhook}), "another checkout gets its own"
    for name in ("secret-key", "webhook-secret"):
        path = tmp_path / "a" / "secrets" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path} readable by its owner only"
    tracked = subprocess.run(
        ["git", "grep", "-I", "-l", "whsec_[A-Za-z0-9+/]\\{20\\}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert all(line.startswith("tests/") for line in tracked.stdout.split()), (
        "no webhook key outside test vectors"
    )


@pytest.mark.django_db
def test_healthz_names_the_failing_part_and_logs_the_cause(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise ConnectionError("cannot reach amqp://admin:hunter2@10.0.0.7//")

    monkeypatch.setitem(health.CHECKS, "broker", broken)
    with caplog.at_level(logging.WARNING, logger="catalog.health"):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "failing": ["broker"],
        "checks": {"database": "ok", "broker": "error", "storage": "ok"},
    }
    assert b"hunter2" not in response.content and b"ConnectionError" not in response.content
    assert "health check broker failed" in caplog.text and "hunter2" in caplog.text, "the cause is in the log"


def test_the_compose_workers_start_with_the_malloc_options_make_run_gives_its_worker() -> None:
    compose = (REPO / "docker-compose.yml").read_text()
    assert f"GLIBC_TUNABLES: {MALLOC_TUNABLES}\n" in compose


def test_a_worker_starts_with_malloc_options_unless_the_operator_chose_them() -> None:
    assert worker_environment({"PATH": "/bin"}) == {"PATH": "/bin", "GLIBC_TUNABLES": MALLOC_TUNABLES}
    assert "glibc.malloc.hugetlb=1" in MALLOC_TUNABLES.split(":")
    for own in ({"MALLOC_ARENA_MAX": "4"}, {"GLIBC_TUNABLES": "glibc.malloc.arena_max=1"}):
        assert worker_environment(own) == own, "an operator's own options are left alone"
