"""Where outputs and result CSVs are stored (files under VAR_DIR, or a bucket) and static files."""

from __future__ import annotations

from typing import Any

from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_str
from config.settings.core import VAR_DIR
from config.settings.images import IMAGE_DOWNLOADS

MEDIA_ROOT = VAR_DIR / "media"
# Without a bucket, outputs are files under MEDIA_ROOT. Development serves them from Django; production
# never does (a Python process streaming files to customers): a web server in front serves MEDIA_ROOT
# at MEDIA_URL (a path on this host, or another host's https:// URL).
MEDIA_URL = env_str("MEDIA_URL", "/media/")
if not MEDIA_URL.endswith("/") or not MEDIA_URL.startswith(("/", "http://", "https://")):
    raise ImproperlyConfigured(f"MEDIA_URL={MEDIA_URL!r} must be a path or URL ending in '/'")
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
WHITENOISE_USE_FINDERS = True  # serve app static files without a collectstatic step

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage: dict[str, Any] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "custom_domain": env_str("AWS_S3_CUSTOM_DOMAIN") or None,
            # Fixed output keys: a retry overwrites its own earlier file, never adds a second one.
            "file_overwrite": True,
            # Output URLs are handed to customers and must not expire after an hour.
            "querystring_auth": env_bool("AWS_QUERYSTRING_AUTH", False),
            "location": env_str("AWS_LOCATION"),
            # Every download thread of a worker process stores its output: botocore's 10 pooled
            # connections had the rest opened and dropped ("Connection pool is full, discarding").
            "client_config": Config(max_pool_connections=max(10, IMAGE_DOWNLOADS)),
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL, "allow_overwrite": True},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
