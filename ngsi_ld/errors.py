"""NGSI-LD errors as ProblemDetails (ETSI GS CIM 009 clause 5.5.2, RFC 7807).

Every error the broker reports to a client is one of these exceptions; the
HTTP layer turns it into an ``application/json`` ProblemDetails body with
``type``, ``title``, ``detail`` and ``status``.  The hierarchy mirrors the
registered NGSI-LD error types::

    NgsiLdError                      (abstract base, never raised itself)
    ├── InvalidRequest               400  the request itself is malformed (bad JSON, bad header)
    ├── BadRequestData               400  the request is well formed but its data are not valid
    ├── ResourceNotFound             404  entity, attribute, subscription, context... not found
    ├── NonexistentTenant            404  the tenant named in NGSILD-Tenant does not exist
    ├── AlreadyExists                409  entity, subscription or context id already taken
    ├── Conflict                     409  the operation conflicts with the state of a resource
    ├── OperationNotSupported        422  the operation is valid but not supported here
    │   └── NotImplementedOperation  501  a part of the API this broker does not implement
    │                                     (type OperationNotSupported, as Orion-LD answers)
    ├── TooComplexQuery              403  the query would be too expensive
    ├── TooManyResults               403  the result set is bigger than the broker returns
    ├── InternalError                500  a bug; logged with the request id, no trace to the client
    ├── NoMultiTenantSupport         501  a tenant was named but multi-tenancy is off
    ├── LdContextNotAvailable        504  a remote @context could not be retrieved
    ├── ServiceUnavailable           503  the store is unreachable (the request may be retried)
    │   (HTTP-level errors the NGSI-LD registry has no type for; same namespace)
    ├── Unauthorized                 401  credentials needed, or the ones sent not accepted
    ├── Forbidden                    403  the caller's roles do not allow the operation
    ├── NotAcceptable                406  no representation matches the Accept header
    ├── PayloadTooLarge              413  the body exceeds the configured maximum
    └── UnsupportedMediaType         415  the Content-Type is not one the operation takes

Modules below ``ngsi_ld`` raise these; nothing here does I/O.
"""

from __future__ import annotations

from typing import Any, ClassVar

ERROR_NAMESPACE = "https://uri.etsi.org/ngsi-ld/errors/"


class NgsiLdError(Exception):
    """Base of every error the broker reports as an NGSI-LD ProblemDetails."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type_uri(self) -> str:
        """The ProblemDetails ``type``: the error's name in the ETSI namespace."""
        return ERROR_NAMESPACE + type(self).__name__

    def to_problem(self) -> dict[str, Any]:
        """The ProblemDetails body for this error."""
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class InvalidRequest(NgsiLdError):
    status = 400
    title = "Invalid request"


class BadRequestData(NgsiLdError):
    status = 400
    title = "Bad request data"


class ResourceNotFound(NgsiLdError):
    status = 404
    title = "Resource not found"


class NonexistentTenant(NgsiLdError):
    status = 404
    title = "Nonexistent tenant"


class AlreadyExists(NgsiLdError):
    status = 409
    title = "Already exists"


class Conflict(NgsiLdError):
    status = 409
    title = "Conflict"


class OperationNotSupported(NgsiLdError):
    status = 422
    title = "Operation not supported"


class NotImplementedOperation(OperationNotSupported):
    status = 501
    title = "Not implemented"

    @property
    def type_uri(self) -> str:
        return ERROR_NAMESPACE + "OperationNotSupported"


class TooComplexQuery(NgsiLdError):
    status = 403
    title = "Too complex query"


class TooManyResults(NgsiLdError):
    status = 403
    title = "Too many results"


class InternalError(NgsiLdError):
    status = 500
    title = "Internal error"


class NoMultiTenantSupport(NgsiLdError):
    status = 501
    title = "No multi-tenant support"


class LdContextNotAvailable(NgsiLdError):
    # 504 Gateway Timeout: the broker, as a client of the @context server, got no
    # usable answer (v1.8.1 OpenAPI: "used when re-downloading fails"; the v1.9.1
    # test purposes 043_01, 051_05 and 028_07 expect it).  ServiceUnavailable
    # (503) stays for the broker's own store.
    status = 504
    title = "LD context not available"


class ServiceUnavailable(NgsiLdError):
    status = 503
    title = "Service unavailable"


class Unauthorized(NgsiLdError):
    status = 401
    title = "Unauthorized"


class Forbidden(NgsiLdError):
    status = 403
    title = "Forbidden"


class NotAcceptable(NgsiLdError):
    status = 406
    title = "Not acceptable"


class PayloadTooLarge(NgsiLdError):
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(NgsiLdError):
    status = 415
    title = "Unsupported media type"


__all__ = [
    "ERROR_NAMESPACE",
    "AlreadyExists",
    "BadRequestData",
    "Conflict",
    "Forbidden",
    "InternalError",
    "InvalidRequest",
    "LdContextNotAvailable",
    "NgsiLdError",
    "NoMultiTenantSupport",
    "NonexistentTenant",
    "NotAcceptable",
    "NotImplementedOperation",
    "OperationNotSupported",
    "PayloadTooLarge",
    "ResourceNotFound",
    "ServiceUnavailable",
    "TooComplexQuery",
    "TooManyResults",
    "Unauthorized",
    "UnsupportedMediaType",
]
