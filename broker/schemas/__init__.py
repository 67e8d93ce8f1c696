"""Optional validation of entities against JSON Schemas per entity type (``--model-schemas``).

``ModelSchemas.load(DIR)`` compiles the schemas of a directory once;
``ModelSchemas.violations(entity)`` lists how an entity in the internal form
breaks them; ``validating(store, schemas)`` wraps a store so that a write whose
result violates a schema is refused with 400 BadRequestData, nothing written.
The loader (``broker.loader``) reports violating rows with the same checks.
"""

from broker.schemas.models import ModelSchemas, SchemaLoadError, TypeSchema, Violation
from broker.schemas.store import SchemaViolation, ValidatingStore, validating

__all__ = [
    "ModelSchemas",
    "SchemaLoadError",
    "SchemaViolation",
    "TypeSchema",
    "ValidatingStore",
    "Violation",
    "validating",
]
