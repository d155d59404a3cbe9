"""All settings, read from the environment (and an optional .env file).

Safe by default: production (the default APP_ENV) has no default secret, host or webhook key, wants
authentication, and refuses each development convenience (DEBUG, REQUIRE_AUTH=false) naming the
variable. Development makes its secrets once per machine under VAR_DIR (config/machine_secrets.py):
nothing secret is in the repository. Bad values fail at start-up with the variable named.
"""

from __future__ import annotations

import base64
import ipaddress
import math
import os
import re
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from dotenv import load_dotenv

from config.env import env_bool, env_float, env_int, env_list, env_str
from config.machine_secrets import new_webhook_secret, persisted_secret

django_stubs_ext.monkeypatch()  # generic Django classes (ModelAdmin[...]) at run time

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env", override=False)

APP_ENV = env_str("APP_ENV", "production")
if APP_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"APP_ENV={APP_ENV!r} must be 'development' or 'production'")
DEVELOPMENT = APP_ENV == "development"

VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var"))).resolve()


def _development_only(name: str, allowed: bool) -> None:
    """A convenience that would make production unsafe: refused there, with the variable named."""
    if allowed and not DEVELOPMENT:
        raise ImproperlyConfigured(f"{name} is refused in production: it is for APP_ENV=development only")


DEBUG = env_bool("DEBUG", False)
_development_only("DEBUG=true", DEBUG)
# Development: a random key made on first start and kept in VAR_DIR (a checkout has no key of its own).
SECRET_KEY = env_str("SECRET_KEY") or (
    persisted_secret(VAR_DIR / "secrets" / "secret-key", get_random_secret_key) if DEVELOPMENT else ""
)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set in production (at least 50 random characters)")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEVELOPMENT else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the hosts this service answers to")
if "*" in ALLOWED_HOSTS and not DEVELOPMENT:
    raise ImproperlyConfigured("ALLOWED_HOSTS must not be a wildcard in production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

HOST = env_str("HOST", "127.0.0.1")
PORT = env_int("PORT", 8000, minimum=1, maximum=65535)

PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL").rstrip("/")
if PUBLIC_BASE_URL and not PUBLIC_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"PUBLIC_BASE_URL={PUBLIC_BASE_URL!r} must start with http:// or https://")

REQUIRE_AUTH = env_bool("REQUIRE_AUTH", not DEVELOPMENT)
_development_only("REQUIRE_AUTH=false", not REQUIRE_AUTH)
LOGIN_REDIRECT_URL = "/requests/"  # the pages sign in with Django's own session login
LOGOUT_REDIRECT_URL = "/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as local static files: no CDN needed
    "catalog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "catalog.logcontext.RequestLogContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
# SQLite by default. Several processes write at once (web + workers): WAL lets readers run beside a
# writer, IMMEDIATE transactions take the write lock up front (so no deadlocked upgrade from a read
# lock), and a 20 s busy timeout waits instead of failing with "database is locked".
_sqlite_path = VAR_DIR / "db.sqlite3"
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{_sqlite_path}")
_database: dict[str, Any] = dict(dj_database_url.parse(DATABASE_URL, conn_max_age=0))
if _database["ENGINE"] == "django.db.backends.sqlite3":
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

# --- Storage --------------------------------------------------------------------------------------
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

# --- Uploads and CSV limits -----------------------------------------------------------------------
CSV_MAX_BYTES = env_int("CSV_MAX_BYTES", 50 * 1024 * 1024, minimum=1)
CSV_MAX_ROWS = env_int("CSV_MAX_ROWS", 200_000, minimum=1)
CSV_MAX_FIELD_BYTES = env_int("CSV_MAX_FIELD_BYTES", 65_536, minimum=64)
CSV_MAX_URLS_PER_ROW = env_int("CSV_MAX_URLS_PER_ROW", 100, minimum=1)
CSV_MAX_PROBLEMS = env_int("CSV_MAX_PROBLEMS", 100, minimum=1)
CSV_MAX_URL_LENGTH = env_int("CSV_MAX_URL_LENGTH", 2048, minimum=16)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # larger uploads spool to a temporary file
DATA_UPLOAD_MAX_MEMORY_SIZE = CSV_MAX_BYTES + 1024 * 1024

# --- Fetching images ------------------------------------------------------------------------------
FETCH_CONNECT_TIMEOUT = env_float("FETCH_CONNECT_TIMEOUT", 5.0)
FETCH_READ_TIMEOUT = env_float("FETCH_READ_TIMEOUT", 10.0)
FETCH_TOTAL_TIMEOUT = env_float("FETCH_TOTAL_TIMEOUT", 30.0)
FETCH_MAX_BYTES = env_int("FETCH_MAX_BYTES", 25 * 1024 * 1024, minimum=1)
FETCH_MAX_REDIRECTS = env_int("FETCH_MAX_REDIRECTS", 5)
# Per image host, shared by the worker processes of a machine (catalog/hostpolicy.py): connections at
# once; a breaker that opens after that many timeouts or refused connections in a row and lets one
# probe through after that long; the longest Retry-After honoured; how long a DNS answer is reused.
# A catalogue's images mostly come from one host (the seller's CDN): its connections bound throughput
# at (connections / latency), 128 at 1 s is ~110 images/s; lower it for hosts that ask for less.
FETCH_HOST_CONNECTIONS = env_int("FETCH_HOST_CONNECTIONS", 128, minimum=1)
FETCH_HOST_BREAKER_AFTER = env_int("FETCH_HOST_BREAKER_AFTER", 5, minimum=1)
FETCH_HOST_BREAKER_SECONDS = env_float("FETCH_HOST_BREAKER_SECONDS", 30.0)
FETCH_RETRY_AFTER_MAX = env_float("FETCH_RETRY_AFTER_MAX", 3600.0)
FETCH_DNS_TTL = env_float("FETCH_DNS_TTL", 30.0)


def _networks(name: str) -> tuple[str, ...]:
    networks = []
    for item in env_list(name):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {item!r} is not a CIDR network: {exc}") from None
    return tuple(networks)


FETCH_ALLOWED_PRIVATE_NETWORKS = _networks("FETCH_ALLOWED_PRIVATE_NETWORKS")
# The sample catalogue (`manage.py demo`): drawn images this service serves at /samples/ and fetches
# from itself over loopback, so a first run needs no image host. Development only: it exempts that
# one origin and path from the address policy, nothing else.
SAMPLE_IMAGES = env_bool("SAMPLE_IMAGES", DEVELOPMENT)
if SAMPLE_IMAGES and not DEVELOPMENT:
    raise ImproperlyConfigured("SAMPLE_IMAGES=true is for local development (APP_ENV=development) only")
_SAMPLE_HOST = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(HOST, HOST)  # noqa: S104
SAMPLE_IMAGES_URL = f"http://{_SAMPLE_HOST}:{PORT}/samples/"

# --- Image processing -----------------------------------------------------------------------------
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 50_000_000, minimum=1)
IMAGE_MAX_FRAMES = env_int("IMAGE_MAX_FRAMES", 200, minimum=1)
IMAGE_MAX_ATTEMPTS = env_int("IMAGE_MAX_ATTEMPTS", 5, minimum=1)
# The most time an image's downloads may take over all its attempts: each attempt gets what is left
# (at most FETCH_TOTAL_TIMEOUT), and an image with less left than FETCH_CONNECT_TIMEOUT fails. The
# default, 1.5 x FETCH_TOTAL_TIMEOUT, gives a host that never finishes its answer one full attempt and
# half of another (a body that outlasts the deadline is not tried again: it would be as slow).
IMAGE_TOTAL_BUDGET = env_float("IMAGE_TOTAL_BUDGET", 1.5 * FETCH_TOTAL_TIMEOUT)
if IMAGE_TOTAL_BUDGET < FETCH_CONNECT_TIMEOUT:
    raise ImproperlyConfigured(
        f"IMAGE_TOTAL_BUDGET={IMAGE_TOTAL_BUDGET:g} is shorter than "
        f"FETCH_CONNECT_TIMEOUT={FETCH_CONNECT_TIMEOUT:g}: no download could even connect"
    )
# What transparent pixels become in a JPEG output (which has no alpha): "#rrggbb".
_background = env_str("IMAGE_BACKGROUND", "#ffffff")
if not re.fullmatch(r"#[0-9a-fA-F]{6}", _background):
    raise ImproperlyConfigured(f"IMAGE_BACKGROUND={_background!r} must be a colour like #ffffff")
# The pages' "before" pictures (sansio.images._preview): the encoder's input fitted in this many px,
# stored beside each output (about 1 ms and 25-50 KB an image). 0: none, the pages show outputs only.
IMAGE_PREVIEW_SIZE = env_int("IMAGE_PREVIEW_SIZE", 640, minimum=0, maximum=4096)
IMAGE_BACKGROUND = (
    int(_background[1:3], 16),
    int(_background[3:5], 16),
    int(_background[5:7], 16),
)
IMAGE_LEASE_SECONDS = env_int("IMAGE_LEASE_SECONDS", 300, minimum=10)
# Images per task: claimed in one UPDATE, their outcomes written in one transaction. In each worker
# process, IMAGE_DOWNLOADS threads download (and store) while at most IMAGE_TRANSFORMS of them decode
# and encode: the network waits overlap, and the cores are not oversubscribed. Measured with
# `make bench` on 2 cores (service / plain Pillow loop): 4 images, 4 threads each doing both: 0.65;
# 16 images, 8 downloads, 2 transforms: 0.76; 2 downloads: 0.75; 32 images: 0.74. With one pool
# process more than cores (CELERY_WORKER_CONCURRENCY below), one transform each does best: 0.79-0.84
# against 0.77-0.83 for a process per core with two (3 paired runs).
# Far hosts (300 ms to first byte, make bench, 400 images, 2 loaded cores): 16 images and 8 downloads
# gave 0.50 of the plain loop, 6 processes of 32 and 32 gave 0.66, 3 processes of 64 and 64 gave 0.77
# (peak memory 803 MB against 693 MB): set 64 and 64 for far hosts. The defaults stay what the local
# host measured best with (64-image batches leave cores idle at a request's end: 0.84 and 0.62 against
# 0.94 and 0.70, pairs in turn on loaded cores).
IMAGE_BATCH_SIZE = env_int("IMAGE_BATCH_SIZE", 16, minimum=1, maximum=256)
IMAGE_DOWNLOADS = env_int("IMAGE_DOWNLOADS", 8, minimum=1, maximum=256)
IMAGE_TRANSFORMS = env_int("IMAGE_TRANSFORMS", 1, minimum=1, maximum=64)
RECONCILE_INTERVAL_SECONDS = env_float("RECONCILE_INTERVAL_SECONDS", 30.0)

# --- Webhooks -------------------------------------------------------------------------------------
# In Standard Webhooks form: "whsec_" + base64 key bytes. Unset in production: webhooks are refused at
# upload. Development: a random one made on first start and kept in VAR_DIR.
WEBHOOK_SECRET = env_str("WEBHOOK_SECRET") or (
    persisted_secret(VAR_DIR / "secrets" / "webhook-secret", new_webhook_secret) if DEVELOPMENT else ""
)
if WEBHOOK_SECRET.startswith("whsec_"):
    try:
        base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"), validate=True)
    except ValueError:
        raise ImproperlyConfigured("WEBHOOK_SECRET: after 'whsec_' must come base64 key bytes") from None
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 10.0)
WEBHOOK_RETRY_BASE_SECONDS = env_float("WEBHOOK_RETRY_BASE_SECONDS", 10.0)

# --- Celery ---------------------------------------------------------------------------------------
# The embedded default is kombu's filesystem transport: no server to install. It can drop a message
# in flight when a worker dies; the database stays the record of what is left and the reconciler
# re-queues it.
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost/")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT = "catalog-files"  # config.broker:Transport: whole messages (see there)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "doorbell_folder": str(BROKER_DIR / "doorbells"),  # see config/doorbell.py
        "store_processed": False,
        # Consumers wait on a doorbell that every put and ack rings (config/doorbell.py): an 8-image
        # request completes in a median 41 ms from upload, against 144 ms when they slept 50 ms between
        # looks. The interval is only the fallback for a missed ring; 0.5 s keeps an idle worker at
        # 0.10% of a core (0.50% at 0.05 s).
        "polling_interval": env_float("BROKER_POLLING_INTERVAL", 0.5),
    }
    for _folder in ("queue", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Unacked tasks come back after this long: longer than any task may run (hard limit below).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    if CELERY_BROKER_URL.startswith("redis://"):  # rediss:// keeps kombu's own, which sets up TLS
        CELERY_BROKER_TRANSPORT = "catalog-redis"  # config.broker:RedisTransport: survives a lost connection
CELERY_TASK_ACKS_LATE = True  # a task is acknowledged after it ran, so a killed worker's task comes back
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Each process keeps a few small batches in hand, so it never waits on a broker poll between two
# (measured: 68 -> 164 images/s end to end on the embedded broker). Held messages of a killed worker
# come back from the broker, or from the reconciler; they were never claimed, so never run twice.
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4, minimum=1)
# Pool processes: one per core this process may run on, plus one that transforms while another claims
# or settles its batch (a command line's --concurrency still wins).
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", _CORES + 1, minimum=1)
# Batches sent and not yet settled, over all workers (catalog/services/dispatching.py): the rest wait
# in the database and are sent round-robin between requests as room frees, so the broker stays small
# and a small request waits for these, not for a big one's backlog. Default: twice what one worker's
# processes hold (concurrency x prefetch); raise it with the number of workers.
IMAGE_BATCHES_IN_FLIGHT = env_int(
    "IMAGE_BATCHES_IN_FLIGHT", 2 * CELERY_WORKER_CONCURRENCY * CELERY_WORKER_PREFETCH_MULTIPLIER, minimum=1
)
# How often a worker looks for claims of its pool processes that died (released at once, not a lease later).
CLAIM_CHECK_SECONDS = env_float("CLAIM_CHECK_SECONDS", 2.0)
# Bytes of downloaded images held at once by a machine's worker processes (each its share): a
# download waits for room, so slow hosts can have many downloads in flight without memory growing.
IMAGE_DOWNLOAD_MEMORY = env_int("IMAGE_DOWNLOAD_MEMORY", 256 * 1024 * 1024, minimum=1024 * 1024)
# Transforms at once over all the worker processes sharing VAR_DIR (a machine): its cores.
IMAGE_MACHINE_TRANSFORMS = env_int("IMAGE_MACHINE_TRANSFORMS", _CORES, minimum=1)
CELERY_TASK_IGNORE_RESULT = True  # status comes from our tables, never a result backend
CELERY_RESULT_BACKEND = None
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 30
# A batch whose every host is slow takes ceil(batch / downloads) rounds of the fetch deadline: that
# must fit in the soft limit, or such a batch would be cut every time and never finish.
_slowest_batch = math.ceil(IMAGE_BATCH_SIZE / IMAGE_DOWNLOADS) * FETCH_TOTAL_TIMEOUT
if _slowest_batch >= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"IMAGE_BATCH_SIZE={IMAGE_BATCH_SIZE} at IMAGE_DOWNLOADS={IMAGE_DOWNLOADS} can take "
        f"{_slowest_batch:g} s of downloads (FETCH_TOTAL_TIMEOUT={FETCH_TOTAL_TIMEOUT:g} each), not under "
        f"CELERY_TASK_SOFT_TIME_LIMIT={CELERY_TASK_SOFT_TIME_LIMIT}: use smaller batches or more downloads"
    )
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = "images"
CELERY_TASK_ROUTES = {
    "catalog.tasks.process_images": {"queue": "images"},
    "catalog.tasks.*": {"queue": "control"},
}
CELERY_BEAT_SCHEDULE = {
    "reconcile": {"task": "catalog.tasks.reconcile", "schedule": RECONCILE_INTERVAL_SECONDS},
}
# Retention: requests completed more than this many days ago go, with their result CSVs and the outputs
# no kept request uses (catalog/services/retention.py), checked hourly. 0: keep everything.
RETENTION_DAYS = env_int("RETENTION_DAYS", 0)
if RETENTION_DAYS:
    CELERY_BEAT_SCHEDULE["purge"] = {"task": "catalog.tasks.purge_expired", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Cache (upload throttling counts) ----------------------------------------------------------
# Shared by every web process: files on the embedded default, Redis when CACHE_URL names one.
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
UPLOAD_RATE = env_str("UPLOAD_RATE", "60/minute")

# --- API ------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["catalog.permissions.AuthenticatedIfRequired"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "catalog.api.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"upload": UPLOAD_RATE},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Catalogue images API",
    "DESCRIPTION": (
        "Upload a CSV of products and image URLs; poll for the resized images and a result CSV. "
        "The contract, with examples: docs/api.md in the repository.\n\n[← Back to the app](/)"
    ),
    "SORT_OPERATIONS": False,  # upload first, then status: the order they are used in
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- Security (production) ------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEVELOPMENT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # HSTS for this host only by default: subdomains and the browsers' preload list are each the
    # operator's decision (hard to undo), so each is opt-in, and Django's reminders of them are quiet
    # until then.
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if SECURE_HSTS_PRELOAD and not (SECURE_HSTS_INCLUDE_SUBDOMAINS and SECURE_HSTS_SECONDS >= 31_536_000):
        raise ImproperlyConfigured(
            "SECURE_HSTS_PRELOAD=true needs SECURE_HSTS_INCLUDE_SUBDOMAINS=true and SECURE_HSTS_SECONDS of "
            "at least 31536000 (the preload list's rules)"
        )
    SILENCED_SYSTEM_CHECKS = [
        *([] if SECURE_HSTS_INCLUDE_SUBDOMAINS else ["security.W005"]),
        *([] if SECURE_HSTS_PRELOAD else ["security.W021"]),
    ]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging --------------------------------------------------------------------------------------
LOG_DIR = VAR_DIR / "log"
# Prometheus counters are kept per process in files here, so /metrics adds up web and workers alike.
# Set, not defaulted: a child started with another VAR_DIR (a test stack) inherits its parent's
# variable, and would mix its counts into the parent's.
METRICS_DIR = VAR_DIR / "metrics"
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
# Bearer token for GET /metrics; without one, /metrics is open in development and off in production.
# A worker machine's own counters, served by its main worker process on HOST:<port> (0: off).
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, maximum=65535)
METRICS_TOKEN = env_str("METRICS_TOKEN")
if METRICS_TOKEN and (len(METRICS_TOKEN) < 16 or not METRICS_TOKEN.isprintable() or " " in METRICS_TOKEN):
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 printable characters without spaces")
for _needed in (LOG_DIR, STATIC_ROOT, METRICS_DIR):
    _needed.mkdir(parents=True, exist_ok=True)
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = env_str("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be 'text' or 'json'")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "catalog.logcontext.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(processName)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(processName)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
        "errors": {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": str(LOG_DIR / "errors.log"),
            "level": "ERROR",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console", "errors"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # catalog.http logs every call once with its status; Django's own "Not Found: /x" and "Bad
        # Request" warnings would be a second line for the same call. Server errors (5xx) still log.
        "django.request": {"level": "ERROR"},
    },
}
