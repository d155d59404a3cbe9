from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

if TYPE_CHECKING:  # rest_framework.views imports this module through the settings: no run-time import
    from rest_framework.views import APIView


class AuthenticatedIfRequired(BasePermission):
    """With REQUIRE_AUTH every API call needs a user; in local development anyone may call."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not settings.REQUIRE_AUTH:
            return True
        return bool(request.user and request.user.is_authenticated)
