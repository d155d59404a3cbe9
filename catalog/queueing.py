"""Sending tasks by name, so the modules that write need not import the tasks that call them."""

from __future__ import annotations

import logging

from celery import current_app

logger = logging.getLogger(__name__)


def enqueue(task_name: str, *args: object) -> bool:
    """Send a task; if the broker cannot take it, say so and go on.

    Nothing is lost when this fails: every task is re-derived from the database by the reconciler
    (a pending request is re-dispatched, a stalled image re-queued), so a broker outage must not turn
    an upload that was already committed into an error.
    """
    try:
        current_app.send_task(task_name, args=args)
    except Exception as exc:
        logger.warning("could not queue %s%r (%s); the reconciler will queue it again", task_name, args, exc)
        return False
    return True
