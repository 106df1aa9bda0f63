"""The load shapes every target is measured under: body size, connections, JSON or SSE reply."""

from __future__ import annotations

from dataclasses import dataclass

from bench import payloads


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    body: str  # a key of payloads.BODY_FILES
    connections: int
    description: str

    @property
    def stream(self) -> bool:
        return self.body == "stream"


SCENARIOS = (
    Scenario("small-c1", "small", 1, f"{payloads.SMALL_BODY_BYTES} B body, 1 connection"),
    Scenario("small-c32", "small", 32, f"{payloads.SMALL_BODY_BYTES} B body, 32 connections"),
    Scenario("large-c32", "large", 32, f"{payloads.LARGE_BODY_BYTES} B body, 32 connections"),
    Scenario(
        "sse-c32",
        "stream",
        32,
        f"{payloads.SMALL_BODY_BYTES} B body with stream:true, "
        f"SSE reply of {payloads.SSE_CHUNKS + 3} events, 32 connections",
    ),
)
SCENARIOS_BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
