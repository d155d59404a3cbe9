"""Typed readers for environment variables that fail loudly on bad values."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _read(name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not {expected}: {exc}") from None


def env_str(name: str, default: str = "") -> str:
    return _read(name, default, str, "a string")


def env_bool(name: str, default: bool) -> bool:
    def parse(raw: str) -> bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ValueError("use true or false")

    return _read(name, default, parse, "a boolean")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    def parse(raw: str) -> int:
        value = int(raw)
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"must be between {minimum} and {maximum if maximum is not None else 'any'}")
        return value

    return _read(name, default, parse, "a whole number")


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    def parse(raw: str) -> float:
        value = float(raw)
        if not value > minimum:
            raise ValueError(f"must be greater than {minimum}")
        return value

    return _read(name, default, parse, "a number")


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    def parse(raw: str) -> list[str]:
        return [item.strip() for item in raw.split(",") if item.strip()]

    return _read(name, list(default or []), parse, "a comma-separated list")
