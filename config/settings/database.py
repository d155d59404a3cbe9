"""The database: SQLite under VAR_DIR by default, or DATABASE_URL."""

from __future__ import annotations

from typing import Any

import dj_database_url

from config.env import env_int, env_str
from config.settings.core import VAR_DIR

# SQLite by default. Several processes write at once (web + workers): WAL lets readers run beside a
# writer, IMMEDIATE transactions take the write lock up front (so no deadlocked upgrade from a read
# lock), and a 20 s busy timeout waits instead of failing with "database is locked".
_sqlite_path = VAR_DIR / "db.sqlite3"
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{_sqlite_path}")
_database: dict[str, Any] = dict(dj_database_url.parse(DATABASE_URL, conn_max_age=0))
if _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["ENGINE"] = "config.sqlite"  # its writers wait for each other in the kernel (its docstring)
    _database["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    _database["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
# Connections outlive a request or task (Celery's Django fix-up closes them only past this age): opening
# one costs a handshake on PostgreSQL and the WAL pragmas on SQLite, per image batch otherwise.
_database["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60)
_database["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
