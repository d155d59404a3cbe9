"""Who may see what: tokens, owners, throttling; settings that fail loudly (production: test_production)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token

REPO = Path(__file__).resolve().parents[1]
CSV = b"S. No.,Product Name,Input Image Urls\n1,SKU1,https://img.example.com/a.jpg\n"


def upload(client: Client, **headers: str) -> tuple[int, dict[str, object]]:
    response = client.post(
        "/api/upload/", {"file": SimpleUploadedFile("c.csv", CSV, "text/csv")}, headers=headers or None
    )
    return response.status_code, response.json()


@pytest.fixture
def auth_required(settings) -> None:
    settings.REQUIRE_AUTH = True


@pytest.mark.django_db
def test_without_a_token_the_api_refuses(client: Client, auth_required: None) -> None:
    code, body = upload(client)
    assert code in (401, 403)
    assert body["status"] == "error"
    assert client.get(f"/api/status/?request_id={uuid.uuid4()}").status_code in (401, 403)


@pytest.mark.django_db
def test_each_request_is_visible_to_its_owner_only(
    client: Client, auth_required: None, django_capture_on_commit_callbacks
) -> None:
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    alice_token, bob_token = Token.objects.create(user=alice), Token.objects.create(user=bob)
    with django_capture_on_commit_callbacks(execute=False):
        code, body = upload(client, Authorization=f"Token {alice_token.key}")
    assert code == 202
    status_path = f"/api/status/?request_id={body['request_id']}"
    assert client.get(status_path, headers={"Authorization": f"Token {alice_token.key}"}).status_code == 200
    other = client.get(status_path, headers={"Authorization": f"Token {bob_token.key}"})
    assert other.status_code == 404, "another user's request id answers 404, as if it did not exist"
    bad = client.get(status_path, headers={"Authorization": "Token not-a-real-token"})
    assert bad.status_code == 401


@pytest.mark.django_db
def test_uploads_are_throttled(client: Client, django_capture_on_commit_callbacks, monkeypatch) -> None:
    from rest_framework.throttling import ScopedRateThrottle

    cache.clear()
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"upload": "2/minute"})
    with django_capture_on_commit_callbacks(execute=False):
        codes = [upload(client)[0] for _ in range(3)]
    assert codes == [202, 202, 429]
    cache.clear()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SECRET_KEY", "", "SECRET_KEY must be set"),
        ("ALLOWED_HOSTS", "*", "wildcard"),
        ("PORT", "eighty", "PORT='eighty' is not a whole number"),
        ("FETCH_ALLOWED_PRIVATE_NETWORKS", "10.0.0.0/33", "not a CIDR network"),
        ("REQUIRE_AUTH", "maybe", "REQUIRE_AUTH='maybe' is not a boolean"),
        ("IMAGE_BACKGROUND", "white", "must be a colour like #ffffff"),
        ("IMAGE_BATCH_SIZE", "200", "can take 390 s of downloads (FETCH_TOTAL_TIMEOUT=30 each)"),
        ("IMAGE_LEASE_SECONDS", "30", "not under a batch's time limit of 27 s"),
        ("IMAGE_TOTAL_BUDGET", "soon", "IMAGE_TOTAL_BUDGET='soon' is not a number"),
        ("IMAGE_TOTAL_BUDGET", "1", "shorter than FETCH_CONNECT_TIMEOUT=5: no download could even connect"),
        ("FETCH_HOST_CONNECTIONS", "0", "FETCH_HOST_CONNECTIONS='0' is not a whole number"),
    ],
)
def test_bad_settings_fail_loudly(tmp_path: Path, variable: str, value: str, message: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "APP_ENV"}
    env.update(
        APP_ENV="production", SECRET_KEY="x" * 60, ALLOWED_HOSTS="images.example.com", VAR_DIR=str(tmp_path)
    )
    env[variable] = value
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("lease", "soft_limit", "batch_limit"),
    [("3600", "300", "300.0"), ("300", "300", "270.0"), ("100", "300", "90.0"), ("100", "70", "70.0")],
)
def test_a_batch_gives_back_what_it_has_not_finished_before_its_claims_lease_runs_out(
    tmp_path: Path, lease: str, soft_limit: str, batch_limit: str
) -> None:
    """The batch's limit is the soft limit, but never past the lease less a tenth to settle in."""
    env = {k: v for k, v in os.environ.items() if k != "APP_ENV"}
    env.update(
        APP_ENV="production", SECRET_KEY="x" * 60, ALLOWED_HOSTS="images.example.com", VAR_DIR=str(tmp_path)
    )
    env.update(IMAGE_LEASE_SECONDS=lease, CELERY_TASK_SOFT_TIME_LIMIT=soft_limit)
    script = "from django.conf import settings; print(settings.IMAGE_BATCH_TIME_LIMIT)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == batch_limit
