"""The only place that talks to image hosts (and webhook receivers).

Every request, and every redirect hop, goes through the same steps:

1. parse the URL (``http``/``https`` only) and read its host the way ``getaddrinfo`` would
   (``2130706433`` is 127.0.0.1): ``targets``;
2. resolve the name once, in a worker thread so a slow resolver is cut at the deadline, and refuse
   if *any* address it gives is forbidden by ``sansio.addresses`` (a failed lookup is a refusal,
   never a skipped check): ``resolver``;
3. connect to the address that was checked (pools are keyed by scheme, pinned IP, port and host
   name, so a second lookup, and DNS rebinding, never happen), sending ``Host`` for the name and,
   for https, SNI and certificate verification against the name: ``sender``;
4. read the body with a socket timeout of ``min(read timeout, time left)`` on every receive: a body
   of announced length under the cap in one call (no per-chunk Python work on the hot path), any
   other in ``read1`` steps counted against the cap (``body``); a watchdog thread shuts the socket
   down at the total deadline, which also cuts a server that drips its status line, headers or body
   (``deadline``).

``client`` holds the ``Fetcher`` that runs these steps hop by hop, ``errors`` what they raise and
``limits`` what they may take. Other code imports from this package, not from its modules.

One ``Fetcher`` per worker process; it is thread-safe.
"""

from catalog.fetch.client import Fetcher, Response, fetcher_from_settings, parking_images, slot_waits_end
from catalog.fetch.errors import FetchError
from catalog.fetch.limits import FetchLimits

__all__ = [
    "FetchError",
    "FetchLimits",
    "Fetcher",
    "Response",
    "fetcher_from_settings",
    "parking_images",
    "slot_waits_end",
]
