"""Downloading images from their hosts: timeouts, sizes, per-host limits, the address policy."""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list
from config.settings.core import DEVELOPMENT
from config.settings.web import HOST, PORT

FETCH_CONNECT_TIMEOUT = env_float("FETCH_CONNECT_TIMEOUT", 5.0)
FETCH_READ_TIMEOUT = env_float("FETCH_READ_TIMEOUT", 10.0)
FETCH_TOTAL_TIMEOUT = env_float("FETCH_TOTAL_TIMEOUT", 30.0)
FETCH_MAX_BYTES = env_int("FETCH_MAX_BYTES", 25 * 1024 * 1024, minimum=1)
FETCH_MAX_REDIRECTS = env_int("FETCH_MAX_REDIRECTS", 5)
# Per image host, shared by the worker processes of a machine (catalog/hostpolicy.py): connections at
# once; a breaker that opens after that many timeouts or refused connections in a row and lets one
# probe through after that long; the longest Retry-After honoured; how long a DNS answer is reused.
# A catalogue's images mostly come from one host (the seller's CDN): its connections bound throughput
# at (connections / latency): 128 at 1 s is ~110 images/s, where 2 cores transform 150-157 (30 November,
# second session), so 256: the two processes' 128 download threads each; lower it for hosts that ask
# for less (a host's first wave, IMAGE_HOST_FIRST_DOWNLOADS, still bounds a host not heard from).
FETCH_HOST_CONNECTIONS = env_int("FETCH_HOST_CONNECTIONS", 256, minimum=1)
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
