"""The Context Source identity (5.2.40): aliases per tenant, ISO 8601 uptime."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.source_identity import identity, iso_duration, source_alias, source_digest

DURATION = re.compile(
    r"^P(?!$)(?:(\d+)D)?(?:T(?!$)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


@given(st.integers(min_value=0, max_value=10**12))
def test_uptime_is_an_iso_8601_duration_of_the_same_length(millis: int) -> None:
    text = iso_duration(millis / 1000)
    match = DURATION.match(text)
    assert match, text
    days, hours, minutes, seconds = (float(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    assert round(total * 1000) == millis


def test_uptime_examples() -> None:
    assert iso_duration(0) == "PT0S"
    assert iso_duration(0.25) == "PT0.25S"
    assert iso_duration(3600) == "PT1H"
    assert iso_duration(86_400 * 2 + 3 * 3600 + 4 * 60 + 5.678) == "P2DT3H4M5.678S"


def test_each_tenant_has_its_own_stable_alias() -> None:
    digest = source_digest("http://broker:1026", "sqlite:data.db")
    assert digest == source_digest("http://broker:1026", "sqlite:data.db")
    assert digest != source_digest("http://other:1026", "sqlite:data.db")
    aliases = {source_alias(digest), source_alias(digest, "a"), source_alias(digest, "b")}
    assert len(aliases) == 3


def test_identity_members() -> None:
    body = identity("abc", "city", 1.5, "2026-01-01T00:00:00.000Z", {"broker": "x"})
    assert body["type"] == "ContextSourceIdentity" and body["id"].startswith("urn:")
    assert body["contextSourceAlias"].endswith(":city")
    assert body["contextSourceUptime"] == "PT1.5S"
    assert body["contextSourceTimeAt"] == "2026-01-01T00:00:00.000Z"
    assert body["contextSourceExtras"] == {"broker": "x"}
    assert "contextSourceExtras" not in identity("abc", "", 0, "2026-01-01T00:00:00Z")
