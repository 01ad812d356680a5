from app.core.errors import Conflict, DomainError, NotFound, Unauthorized


class SignatureRequired(Unauthorized):
    code, title = "signature_required", "X-Content-Signature is required"


class InvalidSignature(Unauthorized):
    code, title = "invalid_signature", "The content signature does not verify"
    variants = ("malformed_signature", "unknown_kid")


class BatchTooLarge(DomainError):
    status, code, title = 413, "batch_too_large", "A batch holds at most 1,000 records"


class InvalidBatch(DomainError):
    status, code, title = 422, "invalid_batch", 'The batch is not {"records": [...]}'
    variants = ("malformed_json", "empty_batch")


class ConcurrentConflict(Conflict):
    code, title = "concurrent_conflict", "A concurrent request claimed the same record; retry"


class InsufficientPoints(Conflict):
    code, title = "insufficient_points", "Not enough points"


class AccountNotFound(NotFound):
    code, title = "account_not_found", "No such account"


class EntryNotFound(NotFound):
    code, title = "entry_not_found", "No such ledger entry"


class InvalidAmount(DomainError):
    status, code, title = 422, "invalid_amount", "Points must be a positive whole number"


class BatchNotFound(NotFound):
    code, title = "batch_not_found", "No such batch of yours"


class InvalidPeriod(DomainError):
    status, code, title = 422, "invalid_period", "received_from must come before received_to"


class BatchBodyUnreadable(DomainError):
    """The kept body is no longer one whole zlib stream (app.points.bodies): altered in the database."""

    status, code, title = 500, "batch_body_unreadable", "The stored body of this batch can no longer be read"
