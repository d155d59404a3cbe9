"""Sending tasks by name, so the modules that write need not import the tasks that call them."""

from __future__ import annotations

from celery import current_app


def enqueue(task_name: str, *args: object) -> None:
    current_app.send_task(task_name, args=args)
