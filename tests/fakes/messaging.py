"""In-memory consumer marks and retry queue (shared.messaging.ports.Marks and RetryQueue).

`MemoryMarks` keeps the claim/lease state machine of shared.messaging.consumers exactly as
`DynamoMarks` does; tests/contract/test_consumer_marks.py runs one test class against both.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.messaging.ports import ClaimOutcome


class MemoryMarks:
    def __init__(self) -> None:
        self.marks: dict[tuple[str, str], dict] = {}

    def claim(self, consumer: str, event_id: str, token: str, now_ms: int, lease_ms: int) -> ClaimOutcome:
        held = self.marks.get((consumer, event_id))
        if held and held["state"] == "DONE":
            return ClaimOutcome.DONE
        if held and held["token"] == token:
            return ClaimOutcome.CLAIMED  # our own claim, asked again (its first answer was lost)
        if held and held["lease_until"] >= now_ms:
            return ClaimOutcome.BUSY
        self.marks[(consumer, event_id)] = {"state": "CLAIMED", "token": token, "lease_until": now_ms + lease_ms}
        return ClaimOutcome.CLAIMED

    def complete(self, consumer: str, event_id: str, token: str, now_ms: int) -> None:
        self.marks[(consumer, event_id)] = {"state": "DONE", "token": token, "lease_until": now_ms}

    def release(self, consumer: str, event_id: str, token: str) -> None:
        held = self.marks.get((consumer, event_id), {})
        if held.get("token") == token and held.get("state") == "CLAIMED":
            del self.marks[(consumer, event_id)]


class MemoryQueue:
    def __init__(self, max_receives: int | None = 5) -> None:
        self.limit = max_receives
        self.delays: list[tuple[str, int]] = []
        self.dead: list[tuple[str, dict[str, str]]] = []

    def max_receives(self, source_arn: str) -> int | None:
        return self.limit

    def retry_later(self, source_arn: str, delays: Sequence[tuple[str, int]]) -> None:
        self.delays.extend(delays)

    def dead_letter(self, source_arn: str, body: str, attributes: dict[str, str]) -> None:
        self.dead.append((body, attributes))
