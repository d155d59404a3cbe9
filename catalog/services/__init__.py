"""Every write to requests, products and images, by subject.

Work is claimed and counted with conditional UPDATEs, so a task delivered twice, or a worker killed
half-way, never counts an image twice: an image is claimed by moving it to RUNNING with a lease and a
fresh claim token, and only the holder of that token may settle it.
"""

from catalog.services.completion import finalize_request
from catalog.services.intake import (
    ENQUEUE_BATCH,
    CatalogueRejected,
    RequestOptions,
    create_request,
    csv_limits,
    mark_enqueued,
    queued_image_ids,
    start_request,
)
from catalog.services.processing import (
    ClaimedImage,
    ImageFailed,
    ImageOutput,
    claim_images,
    produce_output,
    settle,
    transform_options,
)
from catalog.services.recovery import ReconcileReport, reconcile

__all__ = [
    "ENQUEUE_BATCH",
    "CatalogueRejected",
    "ClaimedImage",
    "ImageFailed",
    "ImageOutput",
    "ReconcileReport",
    "RequestOptions",
    "claim_images",
    "create_request",
    "csv_limits",
    "finalize_request",
    "mark_enqueued",
    "produce_output",
    "queued_image_ids",
    "reconcile",
    "settle",
    "start_request",
    "transform_options",
]
