"""``{{ code|reason_label }}``: a failure's reason code in a few words for people (sansio/reasons.py)."""

from __future__ import annotations

from django import template

from sansio.reasons import label

register = template.Library()


@register.filter
def reason_label(code: str | None) -> str:
    return label(code or "")
