"""What an upload may be: the CSV's limits, request body sizes, and how often a client may upload."""

from __future__ import annotations

from config.env import env_int, env_str

CSV_MAX_BYTES = env_int("CSV_MAX_BYTES", 50 * 1024 * 1024, minimum=1)
CSV_MAX_ROWS = env_int("CSV_MAX_ROWS", 200_000, minimum=1)
CSV_MAX_FIELD_BYTES = env_int("CSV_MAX_FIELD_BYTES", 65_536, minimum=64)
CSV_MAX_URLS_PER_ROW = env_int("CSV_MAX_URLS_PER_ROW", 100, minimum=1)
CSV_MAX_PROBLEMS = env_int("CSV_MAX_PROBLEMS", 100, minimum=1)
CSV_MAX_URL_LENGTH = env_int("CSV_MAX_URL_LENGTH", 2048, minimum=16)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # larger uploads spool to a temporary file
DATA_UPLOAD_MAX_MEMORY_SIZE = CSV_MAX_BYTES + 1024 * 1024

# Uploads per client, counted in the shared cache (settings/cache.py) by the API's throttle and the
# upload page alike.
UPLOAD_RATE = env_str("UPLOAD_RATE", "60/minute")
