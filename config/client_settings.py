"""The few settings `manage.py submit` needs: it is a client of a server, not the server.

`manage.py` picks this module for `submit`, so the command runs on any machine, a production server's
included, with no APP_ENV, secret key or database: only where the server is (and a token) matter.
"""

from __future__ import annotations

from pathlib import Path

import django_stubs_ext
from dotenv import load_dotenv

from config.env import env_int, env_str

django_stubs_ext.monkeypatch()

load_dotenv(Path(__file__).resolve().parent.parent / ".env", override=False)

# Where the server is, when --server is not given (the same variables the server reads).
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL").rstrip("/")
HOST = env_str("HOST", "127.0.0.1")
PORT = env_int("PORT", 8000, minimum=1, maximum=65535)

# The command lives in the catalog app, whose models name the user model; nothing here opens a database.
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "catalog"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
LOGGING_CONFIG = None
