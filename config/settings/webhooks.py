"""Webhooks sent when a request completes: the signing key, attempts and timeouts."""

from __future__ import annotations

import base64

from django.core.exceptions import ImproperlyConfigured

from config.env import env_float, env_int, env_str
from config.machine_secrets import new_webhook_secret, persisted_secret
from config.settings.core import DEVELOPMENT, VAR_DIR

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
