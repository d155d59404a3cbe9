"""The admin, for operators: read-only views to find and look at requests, products and images.

Nothing here edits state or counters (they move only through the services, one conditional UPDATE at
a time); nothing is added by hand (requests come through an upload). Cancel and retry are admin
actions that call the same services as the API and the request page (services/lifecycle.py).
"""

from collections.abc import Callable
from typing import TypeVar

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from catalog.models import ProcessingRequest, Product, ProductImage, WebhookAttempt, WebhookDelivery
from catalog.services import lifecycle

_M = TypeVar("_M", bound=Model)
# The lists get the page's whole width (they are wide); the sidebar's links are on the index too.
admin.site.enable_nav_sidebar = False


class ReadOnlyAdmin(admin.ModelAdmin[_M]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False


@admin.register(ProcessingRequest)
class ProcessingRequestAdmin(ReadOnlyAdmin[ProcessingRequest]):
    list_display = ["name", "status", "images", "owner", "created_at"]
    list_filter = ["status", "created_at", "owner"]
    search_fields = ["=request_id", "name"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # a count(*) over millions of rows on every page is not free
    actions = ["cancel", "retry"]

    @admin.action(description="Cancel the selected requests (images not yet started are not processed)")
    def cancel(self, request: HttpRequest, chosen: QuerySet[ProcessingRequest]) -> None:
        self._change(request, chosen, lifecycle.cancel_request, "cancelled")

    @admin.action(description="Retry the failed images of the selected requests")
    def retry(self, request: HttpRequest, chosen: QuerySet[ProcessingRequest]) -> None:
        self._change(request, chosen, lifecycle.retry_request, "queued again")

    def _change(
        self,
        request: HttpRequest,
        chosen: QuerySet[ProcessingRequest],
        change: Callable[[ProcessingRequest], ProcessingRequest],
        done: str,
    ) -> None:
        changed = 0
        for found in chosen:
            try:
                change(found)
            except lifecycle.LifecycleRefused as exc:
                self.message_user(request, f"{found.name} ({found.request_id}): {exc}", messages.WARNING)
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{changed} request{'s' if changed != 1 else ''} {done}.")

    def has_change_permission(self, request: HttpRequest, obj: ProcessingRequest | None = None) -> bool:
        # Django offers actions only to those who may change; the fields stay read-only (below).
        return bool(request.user.is_staff)

    def get_readonly_fields(self, request: HttpRequest, obj: ProcessingRequest | None = None) -> list[str]:
        return [field.name for field in ProcessingRequest._meta.fields]

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, object] | None = None,
    ) -> HttpResponse:
        nothing_to_save = {"show_save": False, "show_save_and_continue": False}
        return super().changeform_view(
            request, object_id, form_url, {**(extra_context or {}), **nothing_to_save}
        )

    @admin.display(description="images")
    def images(self, request: ProcessingRequest) -> str:
        failed = f", {request.images_failed} failed" if request.images_failed else ""
        return f"{request.images_done} done{failed} of {request.images_total}"


@admin.register(Product)
class ProductAdmin(ReadOnlyAdmin[Product]):
    list_display = ["serial_text", "name", "line", "processed", "request", "upload_time"]
    list_filter = ["processed", "upload_time", "request__owner"]
    search_fields = ["=request__request_id", "name", "input_image_url"]
    list_select_related = ["request"]
    show_full_result_count = False


@admin.register(ProductImage)
class ProductImageAdmin(ReadOnlyAdmin[ProductImage]):
    list_display = [
        "short_url",
        "status",
        "attempts",
        "output_bytes",
        "short_error",
        "finished_at",
    ]
    list_filter = ["status", "error_code", "finished_at", "request__owner"]
    search_fields = ["=request__request_id", "input_url"]
    show_full_result_count = False

    @admin.display(description="input URL", ordering="input_url")
    def short_url(self, image: ProductImage) -> str:
        return image.input_url if len(image.input_url) <= 60 else image.input_url[:59] + "…"

    @admin.display(description="error")
    def short_error(self, image: ProductImage) -> str:
        return image.error if len(image.error) <= 50 else image.error[:49] + "…"


class WebhookAttemptInline(admin.TabularInline[WebhookAttempt, WebhookDelivery]):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["number", "attempted_at", "status_code", "error", "duration_ms"]

    def has_add_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin[WebhookDelivery]):
    list_display = ["message_id", "url", "status", "attempts", "next_attempt_at", "delivered_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["message_id", "url", "=request__request_id"]
    inlines = [WebhookAttemptInline]
