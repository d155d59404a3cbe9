"""Requests, their products, and one row per image: the record of what is done and what is left."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class RequestStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
    FAILED = "failed"
    CANCELLED = "cancelled"


class OutputFormat(models.TextChoices):
    ORIGINAL = "original", "Same as the input"
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    AVIF = "avif"
    AUTO = "auto", "Smallest (auto)"


class ImageStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # still queued when its request was cancelled: never processed


class ProcessingRequest(models.Model):
    """One uploaded CSV. Counters change only by single conditional UPDATEs (see services)."""

    request_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="processing_requests",
    )
    name = models.CharField(max_length=255, help_text="The uploaded file's name.")
    status = models.CharField(max_length=32, choices=RequestStatus.choices, default=RequestStatus.PENDING)

    scale = models.FloatField(default=0.5)
    quality = models.PositiveSmallIntegerField(default=50)
    output_format = models.CharField(
        max_length=16, choices=OutputFormat.choices, default=OutputFormat.ORIGINAL
    )
    quality_auto = models.BooleanField(
        default=False, help_text="quality=auto: each image at the lowest quality reaching quality_target."
    )
    quality_target = models.FloatField(null=True, blank=True, help_text="Null: the default target.")
    max_bytes = models.PositiveIntegerField(null=True, blank=True, help_text="Byte budget per output image.")
    webhook_url = models.URLField(max_length=2048, blank=True)
    base_url = models.CharField(max_length=512, help_text="Scheme and host that absolute URLs start with.")
    input_columns = models.JSONField(
        default=list,
        blank=True,
        help_text="The input CSV's header as written, echoed by the result CSV; empty: the contract's three.",
    )

    products_total = models.PositiveIntegerField(default=0)
    images_total = models.PositiveIntegerField(default=0)
    images_done = models.PositiveIntegerField(default=0)
    images_failed = models.PositiveIntegerField(default=0)
    images_cancelled = models.PositiveIntegerField(default=0, db_default=0)
    images_reused = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text="Images done with an output made before (unchanged or identical bytes).",
    )

    result_file = models.CharField(max_length=512, blank=True, help_text="Storage name of the output CSV.")
    completed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    last_progress_at = models.DateTimeField(null=True, blank=True)
    last_fed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a batch of it was last sent: the request served longest ago goes next.",
    )
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["completed", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.request_id})"

    @property
    def images_settled(self) -> int:
        return self.images_done + self.images_failed + self.images_cancelled

    @staticmethod
    def settled_filter() -> models.Q:
        """Every image has an outcome: the condition a request is finalized on (one UPDATE/SELECT)."""
        settled = models.F("images_done") + models.F("images_failed") + models.F("images_cancelled")
        return models.Q(images_total=settled)


class Product(models.Model):
    """One row of the input CSV, with its cells kept exactly as written for the result CSV."""

    request = models.ForeignKey(ProcessingRequest, on_delete=models.CASCADE, related_name="products")
    line = models.PositiveIntegerField(help_text="1-based line of the input file where the row starts.")
    serial_number = models.PositiveBigIntegerField()
    serial_text = models.CharField(max_length=64)
    name = models.TextField()
    input_image_url = models.TextField(help_text="The input URLs cell, exactly as uploaded.")
    output_image_url = models.TextField(
        blank=True, help_text="Output URLs, one slot per input, comma-joined."
    )
    upload_time = models.DateTimeField(default=timezone.now)
    processed = models.BooleanField(default=False)
    kept_cells = models.JSONField(
        default=list,
        blank=True,
        help_text="The cells of the input's other columns (Brand, Price…), in order, as written.",
    )

    class Meta:
        ordering = ["request", "line"]
        constraints = [
            models.UniqueConstraint(fields=["request", "serial_number"], name="unique_serial_per_request"),
        ]
        indexes = [models.Index(fields=["request", "line"])]

    def __str__(self) -> str:
        return f"{self.serial_text} {self.name}"


class ProductImage(models.Model):
    """One input image of a product: the unit of work a task claims."""

    request = models.ForeignKey(ProcessingRequest, on_delete=models.CASCADE, related_name="images")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    position = models.PositiveSmallIntegerField(help_text="0-based place of the URL in the product's cell.")
    input_url = models.TextField()
    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="duplicates",
        help_text="The same URL earlier in the request: processed once, its result shared.",
    )

    status = models.CharField(max_length=16, choices=ImageStatus.choices, default=ImageStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    download_seconds = models.FloatField(
        default=0.0,
        db_default=0.0,  # rows are also written by raw INSERTs (services/intake.py) that do not name it
        help_text="Time its downloads took over all attempts (IMAGE_TOTAL_BUDGET).",
    )
    claim_token = models.UUIDField(null=True, blank=True, help_text="Who holds the current claim.")
    claimed_by = models.CharField(
        max_length=255, blank=True, help_text="The worker process of the claim: node/main pid/pool pid."
    )
    enqueued_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a message for it was sent; empty while it waits in the database.",
    )
    not_before = models.DateTimeField(null=True, blank=True, help_text="A retry waits until then.")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    output_file = models.CharField(max_length=512, blank=True, help_text="Storage name of the output image.")
    output_format = models.CharField(max_length=16, blank=True)
    output_quality = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Encoder quality used; null for lossless outputs."
    )
    output_score = models.FloatField(null=True, blank=True, help_text="Score reached, where searched.")
    warning = models.TextField(blank=True, help_text="Done, but not as asked (e.g. over max_bytes).")
    error = models.TextField(blank=True)
    error_code = models.CharField(
        max_length=32, blank=True, db_default="", help_text="Why it failed: a code of sansio/reasons.py."
    )
    reused = models.BooleanField(  # db_default: intake inserts images with plain SQL
        default=False, db_default=False, help_text="Its output was made before, not for this image."
    )
    input_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    output_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    input_width = models.PositiveIntegerField(null=True, blank=True)
    input_height = models.PositiveIntegerField(null=True, blank=True)
    output_width = models.PositiveIntegerField(null=True, blank=True)
    output_height = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["product", "position"]
        constraints = [
            models.UniqueConstraint(fields=["product", "position"], name="unique_position_per_product"),
        ]
        indexes = [
            # The dispatcher's look-ups: a request's waiting images (enqueued_at empty) in order, and
            # those sent and not yet claimed.
            models.Index(fields=["request", "status", "enqueued_at", "id"]),
            models.Index(fields=["status", "lease_expires_at"]),
        ]

    def __str__(self) -> str:
        return self.input_url


class WebhookStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """The outbox row: written in the transaction that completes a request, delivered from here."""

    request = models.ForeignKey(
        ProcessingRequest, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    message_id = models.CharField(max_length=64, unique=True, help_text="The webhook-id header.")
    url = models.URLField(max_length=2048)
    body = models.TextField(help_text="The JSON sent, byte for byte the same on every attempt.")
    status = models.CharField(max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.url}"


class WebhookAttempt(models.Model):
    """One try at delivering, kept as a log for the status endpoint and the admin."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"


# --- Re-runs: idempotent uploads, content-keyed outputs, what each source URL sent last time ---------


class IdempotentUpload(models.Model):
    """An upload's Idempotency-Key: the unique (client, key) row is the lock a duplicate runs into."""

    client = models.CharField(max_length=128, help_text="user:<pk> when signed in, else ip:<address>.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the file's bytes and the options.")
    request = models.ForeignKey(
        ProcessingRequest,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="idempotency_keys",
        help_text="Null while the first upload is still being accepted.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="unique_idempotency_key")]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.client} {self.key}"


class ContentOutput(models.Model):
    """One transform's output, keyed by input bytes + options + engine: made once, shared by all."""

    key = models.CharField(max_length=64, unique=True)
    input_hash = models.CharField(
        max_length=64, help_text="Of the input's bytes: sansio.contentkeys.content_hash."
    )
    output_file = models.CharField(max_length=512, help_text="Storage name: outputs/by-content/<key>.<ext>.")
    output_format = models.CharField(max_length=16)
    input_bytes = models.PositiveBigIntegerField()
    output_bytes = models.PositiveBigIntegerField()
    input_width = models.PositiveIntegerField()
    input_height = models.PositiveIntegerField()
    output_width = models.PositiveIntegerField()
    output_height = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.output_file


class SourceVersion(models.Model):
    """What a source URL sent last time: its validators, for a conditional request, and its bytes' hash."""

    url_sha256 = models.CharField(max_length=64, unique=True, help_text="sha256 of the URL (URLs are long).")
    url = models.TextField()
    etag = models.CharField(max_length=512, blank=True)
    last_modified = models.CharField(max_length=64, blank=True)
    content_hash = models.CharField(
        max_length=64, help_text="Of the bytes it sent: sansio.contentkeys.content_hash."
    )
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["seen_at"])]

    def __str__(self) -> str:
        return self.url
