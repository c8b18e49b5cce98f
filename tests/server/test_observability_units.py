"""The small parts on their own: where traces go, how allowed decisions are sampled, label ceilings."""

from __future__ import annotations

import json
import logging
import time

import pytest

from server.logging_setup import JsonFormatter
from server.observability.decisions import Decision, DecisionLog
from server.observability.labels import OTHER, BoundedLabel
from server.observability.tracing import otlp_endpoint

ALLOWED = Decision(allowed=True, reason="allowed", rule="scope runtime grants the tool", route="tools/call")


@pytest.mark.parametrize(
    ("configured", "env", "expected"),
    [
        (None, {}, None),
        ("http://collector:4318", {}, "http://collector:4318/v1/traces"),
        ("http://collector:4318/v1/traces", {}, "http://collector:4318/v1/traces"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces"),
        (None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/x"}, "http://t:4318/x"),
        ("http://collector:4318", {"OTEL_SDK_DISABLED": "true"}, None),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, None),
    ],
)
def test_traces_go_where_capgate_or_the_standard_variables_say(
    monkeypatch: pytest.MonkeyPatch, configured: str | None, env: dict[str, str], expected: str | None
) -> None:
    for name in ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert otlp_endpoint(configured) == expected


def test_sampled_allowed_decisions_stand_for_the_ones_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([0.1, 0.9, 0.3, 0.7])
    monkeypatch.setattr("server.observability.decisions.random.random", lambda: next(draws))
    log = DecisionLog(allowed_mode="sample", sample_rate=0.5, clock=lambda: 120.0)
    for _ in range(4):
        log.record(ALLOWED)
    log.record(Decision(allowed=False, reason="tool_not_granted", rule="r", route="tools/call"))
    rows = log.take_rows()
    assert [(row["outcome"], row["count"]) for row in rows] == [("allowed", 2), ("allowed", 2), ("refused", 1)]


def test_a_disabled_log_records_nothing() -> None:
    log = DecisionLog(enabled=False, clock=lambda: 0.0)
    log.record(ALLOWED)
    assert log.take_rows(final=True) == []


def test_a_bounded_label_keeps_its_first_values_and_folds_the_rest() -> None:
    label = BoundedLabel(2)
    assert [label(v) for v in ("a", "b", "c", "a", "d")] == ["a", "b", OTHER, "a", OTHER]


def test_log_lines_carry_each_records_own_second() -> None:
    formatter = JsonFormatter()

    def logged_time(created: float) -> str:
        record = logging.LogRecord("capgate.request", logging.INFO, "", 0, "request", None, None)
        record.created = created
        return str(json.loads(formatter.format(record))["time"])

    def expected(created: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(created))

    for created in (1_800_000_000.1, 1_800_000_000.9, 1_800_000_001.0, 1_800_000_000.5):
        assert logged_time(created) == expected(created)
