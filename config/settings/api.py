"""The JSON API (Django REST framework) and its OpenAPI schema."""

from __future__ import annotations

from config.settings.uploads import UPLOAD_RATE

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["catalog.permissions.AuthenticatedIfRequired"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "catalog.api.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"upload": UPLOAD_RATE},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Catalogue images API",
    "DESCRIPTION": (
        "Upload a CSV of products and image URLs; poll for the resized images and a result CSV. "
        "The contract, with examples: docs/api.md in the repository.\n\n[← Back to the app](/)"
    ),
    "SORT_OPERATIONS": False,  # upload first, then status: the order they are used in
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}
