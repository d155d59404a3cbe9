#!/usr/bin/env python
import os
import sys

# Commands that are clients of a running server: they load only what they need, so they work on any
# machine without the server's configuration (no APP_ENV, secret key or database).
CLIENT_COMMANDS = {"submit"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in CLIENT_COMMANDS:
        # Always: a shell with the server's DJANGO_SETTINGS_MODULE (a pasted command) must not need them.
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.client_settings"
    else:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
