"""The cache (upload throttling counts), shared by every web process."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.env import env_str
from config.settings.core import VAR_DIR

# Files on the embedded default, Redis when CACHE_URL names one.
CACHE_URL = env_str("CACHE_URL")
if CACHE_URL:
    if not CACHE_URL.startswith(("redis://", "rediss://")):
        raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r} must be a redis:// URL")
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
