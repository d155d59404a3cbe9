from django.conf import settings
from django.templatetags.static import static
from django.urls import URLPattern, URLResolver, path, re_path
from django.views.generic import RedirectView
from django.views.static import serve

from catalog import api, health, metrics_http, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics_http.metrics_view, name="metrics"),
    path("api/upload/", api.UploadView.as_view(), name="api-upload"),
    path("api/status/", api.StatusView.as_view(), name="api-status"),
    path("api/requests/<str:request_id>/cancel/", api.CancelView.as_view(), name="api-cancel"),
    path("api/requests/<str:request_id>/retry/", api.RetryView.as_view(), name="api-retry"),
    path("api/requests/<str:request_id>/failures.csv", api.FailuresView.as_view(), name="api-failures"),
    path("requests/<uuid:request_id>/cancel/", views.cancel_request, name="request-cancel"),
    path("requests/<uuid:request_id>/retry/", views.retry_request, name="request-retry"),
    path("", views.upload, name="upload"),
    path("requests/", views.request_list, name="request-list"),
    path("requests/progress/", views.live_progress, name="request-progress"),
    path("requests/<uuid:request_id>/", views.request_detail, name="request-detail"),
    path(
        "requests/<uuid:request_id>/compare/<int:serial_number>/<int:position>/",
        views.compare,
        name="request-compare",
    ),
    path("requests/<uuid:request_id>/result.csv", views.result_csv, name="request-result"),
    path("requests/<uuid:request_id>/images.zip", views.outputs_zip, name="request-zip"),
    path("samples/<str:name>", views.sample_image, name="sample-image"),
    # Browsers ask for /favicon.ico on pages without an icon link (admin, API docs): no 404 in the log.
    path("favicon.ico", RedirectView.as_view(url=static("catalog/icon.svg"), permanent=True)),
]

if settings.DEVELOPMENT and not settings.AWS_STORAGE_BUCKET_NAME and settings.MEDIA_URL == "/media/":
    # Local-disk storage in development: outputs and result CSVs are served from var/media at stable
    # URLs (`serve` refuses paths that escape the folder). Production leaves this to a web server.
    urlpatterns.append(
        re_path(r"^media/(?P<path>.+)$", serve, {"document_root": settings.MEDIA_ROOT}, name="media")
    )
