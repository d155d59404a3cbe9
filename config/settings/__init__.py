"""All settings (DJANGO_SETTINGS_MODULE=config.settings), read from the environment and an optional .env.

Safe by default: production (the default APP_ENV) has no default secret, host or webhook key, wants
authentication, and refuses each development convenience (DEBUG, REQUIRE_AUTH=false) naming the
variable. Development makes its secrets once per machine under VAR_DIR (config/machine_secrets.py):
nothing secret is in the repository. Bad values fail at start-up with the variable named.

Each subject is a module of its own here, which reads its variables with config/env.py; this one
only gathers them. Reading settings makes nothing but those development secrets: the folders under
VAR_DIR and PROMETHEUS_MULTIPROC_DIR are each process's start-up step (config/startup.py).
"""

from __future__ import annotations

import django_stubs_ext

# In this order: core first, as it reads .env before any variable is read; then each subject after
# the ones it builds on (each also imports what it uses from them).
# isort: off
from config.settings.core import *
from config.settings.security import *
from config.settings.web import *
from config.settings.database import *
from config.settings.storage import *
from config.settings.uploads import *
from config.settings.fetching import *
from config.settings.workers import *
from config.settings.images import *
from config.settings.broker import *
from config.settings.webhooks import *
from config.settings.cache import *
from config.settings.api import *
from config.settings.metrics import *
from config.settings.logs import *
# isort: on

django_stubs_ext.monkeypatch()  # generic Django classes (ModelAdmin[...]) at run time
