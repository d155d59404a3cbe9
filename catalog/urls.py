from django.conf import settings
from django.urls import URLPattern, URLResolver, path, re_path
from django.views.static import serve

from catalog import api, health, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("healthz", health.healthz, name="healthz"),
    path("api/upload/", api.UploadView.as_view(), name="api-upload"),
    path("api/status/", api.StatusView.as_view(), name="api-status"),
    path("", views.index, name="index"),
]

if not settings.AWS_STORAGE_BUCKET_NAME:
    # Local-disk storage: outputs and result CSVs are served from var/media at stable URLs.
    # `serve` refuses paths that escape the folder.
    urlpatterns.append(
        re_path(r"^media/(?P<path>.+)$", serve, {"document_root": settings.MEDIA_ROOT}, name="media")
    )
