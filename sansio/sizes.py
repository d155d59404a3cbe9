"""Byte counts in words for people: "512 bytes", "64 KB", "9.5 MB" (1 KB = 1024 bytes, as the pages'
Django `filesizeformat` counts), whole numbers without a decimal and in full ("1048576 MB" for a
hostile Content-Length, not "1.04858e+06 MB")."""

from __future__ import annotations

_KB, _MB = 1024, 1024 * 1024


def human_size(n: float) -> str:
    for unit, name in ((_MB, "MB"), (_KB, "KB")):
        if n >= unit:
            return f"{int(n // unit)} {name}" if n % unit == 0 else f"{n / unit:.1f} {name}"
    return f"{n:g} bytes"
