from django.contrib import admin

from catalog.models import ProcessingRequest, Product, ProductImage, WebhookAttempt, WebhookDelivery


@admin.register(ProcessingRequest)
class ProcessingRequestAdmin(admin.ModelAdmin[ProcessingRequest]):
    list_display = [
        "request_id",
        "name",
        "status",
        "images_total",
        "images_done",
        "images_failed",
        "created_at",
    ]
    list_filter = ["status", "completed"]
    search_fields = ["request_id", "name"]
    readonly_fields = ["request_id", "created_at", "started_at", "last_progress_at", "completed_at"]
    date_hierarchy = "created_at"


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin[Product]):
    list_display = ["serial_number", "name", "request", "processed", "upload_time"]
    list_filter = ["processed"]
    search_fields = ["name", "request__request_id"]
    raw_id_fields = ["request"]


@admin.register(ProductImage)
class ProductImageAdmin(admin.ModelAdmin[ProductImage]):
    list_display = ["input_url", "status", "attempts", "output_bytes", "error_code", "error", "finished_at"]
    list_filter = ["status", "error_code"]
    search_fields = ["input_url", "request__request_id", "error"]
    raw_id_fields = ["request", "product"]


class WebhookAttemptInline(admin.TabularInline[WebhookAttempt, WebhookDelivery]):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["number", "attempted_at", "status_code", "error", "duration_ms"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin[WebhookDelivery]):
    list_display = ["message_id", "url", "status", "attempts", "next_attempt_at", "delivered_at"]
    list_filter = ["status"]
    search_fields = ["message_id", "url", "request__request_id"]
    raw_id_fields = ["request"]
    inlines = [WebhookAttemptInline]
