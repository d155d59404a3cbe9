"""All settings, read from the environment (and an optional .env file).

Safe by default: production (the default APP_ENV) has no default secret, host or webhook key, wants
authentication, and refuses each development convenience (DEBUG, REQUIRE_AUTH=false) naming the
variable. Development makes its secrets once per machine under VAR_DIR (config/machine_secrets.py):
nothing secret is in the repository. Bad values fail at start-up with the variable named.
"""

# Each module is one subject; later ones read earlier ones' values, so the order matters.
from config.settings.database import *  # noqa: F403
from config.settings.environment import *  # noqa: F403
from config.settings.logs import *  # noqa: F403
from config.settings.processing import *  # noqa: F403
from config.settings.security import *  # noqa: F403
from config.settings.storage import *  # noqa: F403
from config.settings.web import *  # noqa: F403
from config.settings.workers import *  # noqa: F403
