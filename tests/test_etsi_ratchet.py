"""The ETSI ratchet: which listed tests regressed, what is new, what the report shows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from conformance.etsi.ratchet import (
    compare,
    merge_passing,
    parse_passing,
    parse_summary,
    rerun_outcome,
)
from conformance.etsi.report import BEGIN, END, area_of, render_report, replace_section


def summary(*rows: tuple[str, str, str]) -> dict:
    return {
        "started": "2026-12-04T00:00:00Z",
        "tests": [
            {"file": file, "name": name, "id": name.split()[0], "status": status,
             "message": "" if status == "PASS" else "boom"}
            for file, name, status in rows
        ],
    }


A = ("ContextInformation/Provision/Entities/CreateEntity/001_01.robot", "001_01_01 Minimal")
B = ("ContextInformation/Provision/Entities/CreateEntity/001_01.robot", "001_01_02 Simple")
C = ("CommonBehaviours/Tenancy/414_01.robot", "414_01_01 Tenant")


def key(test: tuple[str, str]) -> str:
    return f"{test[0]}::{test[1]}"


def test_a_listed_test_that_fails_is_a_regression_and_a_new_pass_is_reported() -> None:
    run = parse_summary(summary((*A, "PASS"), (*B, "FAIL"), (*C, "PASS")))
    outcome = compare({key(A), key(B)}, run)
    assert outcome.regressed == [key(B)]
    assert outcome.new == [key(C)]
    assert not outcome.ok


def test_a_listed_test_that_did_not_run_fails_a_full_run_only() -> None:
    run = parse_summary(summary((*A, "PASS")))
    assert compare({key(A), key(C)}, run).missing == [key(C)]
    assert not compare({key(A), key(C)}, run).ok
    assert compare({key(A), key(C)}, run, partial=True).ok


def test_a_test_that_passes_on_the_rerun_is_not_a_regression() -> None:
    first = compare({key(A), key(B)}, parse_summary(summary((*A, "FAIL"), (*B, "FAIL"))))
    again = parse_summary(summary((*A, "PASS"), (*B, "FAIL")))
    assert rerun_outcome(first, again).regressed == [key(B)]


def test_the_same_name_twice_passes_only_if_both_pass() -> None:
    run = parse_summary(summary((*A, "PASS"), (*A, "FAIL")))
    assert run.status[key(A)] == "FAIL"


@given(st.sets(st.sampled_from([key(A), key(B), key(C)])),
       st.lists(st.tuples(st.sampled_from([A, B, C]), st.sampled_from(["PASS", "FAIL"]))))
def test_update_never_drops_a_listed_test_and_adds_every_pass(
    listed: set[str], rows: list[tuple[tuple[str, str], str]]
) -> None:
    run = parse_summary(summary(*((*test, status) for test, status in rows)))
    merged = parse_passing(merge_passing(listed, run))
    assert merged == listed | run.passed()
    assert compare(merged, run, partial=True).new == []


def test_areas_are_three_folders_deep_under_consumption_and_provision() -> None:
    assert area_of(A[0]) == "ContextInformation/Provision/Entities"
    assert area_of(C[0]) == "CommonBehaviours/Tenancy"
    assert area_of("ContextInformation/Snapshot/5161_01.robot") == "ContextInformation/Snapshot"


def test_the_report_counts_per_area_and_names_failing_tests() -> None:
    run = parse_summary(summary((*A, "PASS"), (*B, "FAIL"), (*C, "PASS")))
    text = render_report(run, commit="abc", purposes={A[0]: "Check that one can create"})
    assert "| ContextInformation/Provision/Entities | 2 | 1 | implemented |" in text
    assert "001_01_02 Simple: boom" in text
    assert "Check that one can create" in text
    assert text.startswith(BEGIN) and text.rstrip().endswith(END)


def test_the_report_replaces_only_its_own_section() -> None:
    doc = "# Conformance\n\nReadings written by hand.\n"
    once = replace_section(doc, BEGIN + "\nfirst\n" + END + "\n")
    twice = replace_section(once + "\nMore readings.\n", BEGIN + "\nsecond\n" + END + "\n")
    assert "Readings written by hand." in twice and "More readings." in twice
    assert "second" in twice and "first" not in twice
