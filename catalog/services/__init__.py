"""Every write to requests, products and images, by subject.

Work is claimed and counted with conditional UPDATEs, so a task delivered twice, or a worker killed
half-way, never counts an image twice: an image is claimed by moving it to RUNNING with a lease and a
fresh claim token, and only the holder of that token may settle it.
"""

from catalog.services.batches import process_batch
from catalog.services.claims import ClaimedImage, claim_images
from catalog.services.completion import finalize_request
from catalog.services.dispatching import batches_to_send, forget_sent
from catalog.services.intake import (
    CatalogueRejected,
    RequestOptions,
    accept_upload,
    create_request,
    csv_limits,
    queued_image_ids,
    start_request,
)
from catalog.services.producing import ImageFailed, ImageOutput, produce_output, transform_options
from catalog.services.recovery import (
    ReconcileReport,
    claimant,
    claiming_processes,
    pending_request_ids,
    reconcile,
    release_claims_of_node,
    release_claims_of_processes,
)
from catalog.services.settling import retry_delay, settle

__all__ = [
    "CatalogueRejected",
    "ClaimedImage",
    "ImageFailed",
    "ImageOutput",
    "ReconcileReport",
    "RequestOptions",
    "accept_upload",
    "batches_to_send",
    "claim_images",
    "claimant",
    "claiming_processes",
    "create_request",
    "csv_limits",
    "finalize_request",
    "forget_sent",
    "pending_request_ids",
    "process_batch",
    "produce_output",
    "queued_image_ids",
    "reconcile",
    "release_claims_of_node",
    "release_claims_of_processes",
    "retry_delay",
    "settle",
    "start_request",
    "transform_options",
]
