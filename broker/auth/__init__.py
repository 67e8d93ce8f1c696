"""Authentication and authorization, off unless ``--auth`` turns them on (docs/security.md).

- :mod:`broker.auth.policy`: pure rules: roles per tenant, the role every route
  needs (:data:`ROUTES`), :meth:`Policy.decide`;
- :mod:`broker.auth.keyset`, :mod:`broker.auth.tokens`: OpenID Connect bearer
  tokens checked against the issuer's key set;
- :mod:`broker.auth.apikeys`: API keys for machine clients;
- :mod:`broker.auth.middleware`: the aiohttp middleware that puts them together.
"""

from broker.auth.apikeys import ApiKeys, new_key
from broker.auth.keyset import KeySet
from broker.auth.middleware import PRINCIPAL, Authentication
from broker.auth.policy import (
    ROUTES,
    Decision,
    Need,
    Policy,
    Principal,
    Role,
    Scope,
    grants_of,
    need_of,
)
from broker.auth.tokens import TokenError, TokenVerifier

__all__ = [
    "PRINCIPAL", "ROUTES", "ApiKeys", "Authentication", "Decision", "KeySet", "Need", "Policy",
    "Principal", "Role", "Scope", "TokenError", "TokenVerifier", "grants_of", "need_of", "new_key",
]
