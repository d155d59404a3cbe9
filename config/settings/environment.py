"""Which environment this is (APP_ENV), where its files go (VAR_DIR), and what production refuses."""

from __future__ import annotations

from pathlib import Path

import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from config.env import env_bool, env_str

django_stubs_ext.monkeypatch()  # generic Django classes (ModelAdmin[...]) at run time

BASE_DIR = Path(__file__).resolve().parents[2]
load_dotenv(BASE_DIR / ".env", override=False)

APP_ENV = env_str("APP_ENV", "production")
if APP_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"APP_ENV={APP_ENV!r} must be 'development' or 'production'")
DEVELOPMENT = APP_ENV == "development"

VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var"))).resolve()


def development_only(name: str, allowed: bool) -> None:
    """A convenience that would make production unsafe: refused there, with the variable named."""
    if allowed and not DEVELOPMENT:
        raise ImproperlyConfigured(f"{name} is refused in production: it is for APP_ENV=development only")


DEBUG = env_bool("DEBUG", False)
development_only("DEBUG=true", DEBUG)
