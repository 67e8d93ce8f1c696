"""Arbitrary JSON values (Hypothesis), small and nested, for the fuzz tests that put
one as a member of a request body (tests/test_csource_registrations.py,
tests/test_csource_subscriptions.py): every bad input a ProblemDetails, never a 500.
"""

from __future__ import annotations

from hypothesis import strategies as st

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=6)
