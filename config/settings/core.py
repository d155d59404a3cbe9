"""What every other part builds on: the .env file read, which environment this is, where files go."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from config.env import env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
load_dotenv(BASE_DIR / ".env", override=False)

APP_ENV = env_str("APP_ENV", "production")
if APP_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"APP_ENV={APP_ENV!r} must be 'development' or 'production'")
DEVELOPMENT = APP_ENV == "development"

# Every file the service writes itself lives under here (database, media, broker, logs, metrics…);
# the folders are made at process start (config/startup.py), not by reading settings.
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var"))).resolve()


def development_only(name: str, allowed: bool) -> None:
    """A convenience that would make production unsafe: refused there, with the variable named."""
    if allowed and not DEVELOPMENT:
        raise ImproperlyConfigured(f"{name} is refused in production: it is for APP_ENV=development only")
