"""Who may use the service and how it is protected: secret key, hosts, sign-in, HTTPS in production.

Safe by default: production (the default APP_ENV) has no default secret or host, wants
authentication, and refuses each development convenience (DEBUG, REQUIRE_AUTH=false) naming the
variable. Development makes its secret key once per machine under VAR_DIR (config/machine_secrets.py).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from config.env import env_bool, env_int, env_list, env_str
from config.machine_secrets import persisted_secret
from config.settings.core import DEVELOPMENT, VAR_DIR, development_only

DEBUG = env_bool("DEBUG", False)
development_only("DEBUG=true", DEBUG)
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

REQUIRE_AUTH = env_bool("REQUIRE_AUTH", not DEVELOPMENT)
development_only("REQUIRE_AUTH=false", not REQUIRE_AUTH)
LOGIN_REDIRECT_URL = "/requests/"  # the pages sign in with Django's own session login
LOGOUT_REDIRECT_URL = "/"

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
