"""The NGSI-LD broker benchmark suite (``python -m benchmarks``)."""

from benchmarks.suite.catalogue import build_scenarios, million_scenarios
from benchmarks.suite.report import ScenarioResult, render_json, render_markdown
from benchmarks.suite.runner import build_parser, main, make_plan
from benchmarks.suite.scenarios import Scenario, Target, select
from benchmarks.suite.spec import RequestSpec, render_template
from benchmarks.suite.stats import percentile, summarize
from benchmarks.suite.wrk import WrkError, WrkResult, parse_wrk_output, wrk_command

__all__ = [
    "RequestSpec",
    "Scenario",
    "ScenarioResult",
    "Target",
    "WrkError",
    "WrkResult",
    "build_parser",
    "build_scenarios",
    "main",
    "make_plan",
    "million_scenarios",
    "parse_wrk_output",
    "percentile",
    "render_json",
    "render_markdown",
    "render_template",
    "select",
    "summarize",
    "wrk_command",
]
