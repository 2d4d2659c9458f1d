"""The consumer marks port (shared.messaging.ports.Marks): one class of tests run against the
in-memory fake the unit tests use and against DynamoMarks on a moto table from infra/template.yaml,
so the fake cannot drift from the store (the claim/lease state machine of shared.messaging.consumers)."""

from __future__ import annotations

import pytest

from shared.messaging.ports import ClaimOutcome, Marks
from tests.fakes.messaging import MemoryMarks

NOW = 1_795_392_000_000
LEASE = 60_000


@pytest.fixture(params=["memory", "dynamodb"])
def marks(request: pytest.FixtureRequest) -> Marks:
    if request.param == "memory":
        return MemoryMarks()
    request.getfixturevalue("table")  # a fresh moto table, bound as the app's
    from shared.data.stores.consumer_marks import DynamoMarks

    return DynamoMarks()


class TestConsumerMarks:
    def test_the_first_claim_of_an_event_is_ours(self, marks: Marks):
        assert marks.claim("notifications", "e-1", "t-1", NOW, LEASE) is ClaimOutcome.CLAIMED

    def test_a_live_claim_makes_another_worker_busy_up_to_the_last_millisecond_of_its_lease(self, marks: Marks):
        # Given a claim whose lease runs to NOW + LEASE
        marks.claim("notifications", "e-1", "t-1", NOW, LEASE)
        # Then another worker is told to come back, up to and including the lease's end
        assert marks.claim("notifications", "e-1", "t-2", NOW + 1, LEASE) is ClaimOutcome.BUSY
        assert marks.claim("notifications", "e-1", "t-2", NOW + LEASE, LEASE) is ClaimOutcome.BUSY

    def test_a_claim_whose_lease_ran_out_is_taken_over(self, marks: Marks):
        # Given a worker that claimed the event and died
        marks.claim("notifications", "e-1", "dead", NOW, LEASE)
        # When another delivery comes after the lease, it is ours, and holds a lease of its own
        assert marks.claim("notifications", "e-1", "t-2", NOW + LEASE + 1, LEASE) is ClaimOutcome.CLAIMED
        assert marks.claim("notifications", "e-1", "t-3", NOW + LEASE + 2, LEASE) is ClaimOutcome.BUSY

    def test_a_completed_event_is_done_for_every_later_delivery_whatever_the_time(self, marks: Marks):
        marks.claim("notifications", "e-1", "t-1", NOW, LEASE)
        marks.complete("notifications", "e-1", "t-1", NOW + 5)
        assert marks.claim("notifications", "e-1", "t-2", NOW + 6, LEASE) is ClaimOutcome.DONE
        assert marks.claim("notifications", "e-1", "t-3", NOW + 10 * LEASE, LEASE) is ClaimOutcome.DONE

    def test_the_holder_releasing_its_claim_lets_the_retry_claim_at_once(self, marks: Marks):
        marks.claim("notifications", "e-1", "t-1", NOW, LEASE)
        marks.release("notifications", "e-1", "t-1")
        assert marks.claim("notifications", "e-1", "t-2", NOW + 1, LEASE) is ClaimOutcome.CLAIMED

    def test_a_release_with_another_token_leaves_the_live_claim_alone(self, marks: Marks):
        # Given a claim taken over after its first holder's lease ran out
        marks.claim("notifications", "e-1", "old", NOW, LEASE)
        marks.claim("notifications", "e-1", "new", NOW + LEASE + 1, LEASE)
        # When the old holder, late, releases
        marks.release("notifications", "e-1", "old")
        # Then the new holder's claim still stands
        assert marks.claim("notifications", "e-1", "t-3", NOW + LEASE + 2, LEASE) is ClaimOutcome.BUSY

    def test_a_claim_asked_again_with_its_own_token_is_still_ours(self, marks: Marks):
        # Given a claim that was written but whose answer was lost, so the SDK sends it again
        marks.claim("notifications", "e-1", "t-1", NOW, LEASE)
        # Then the repeated claim is ours, and another worker's is still busy
        assert marks.claim("notifications", "e-1", "t-1", NOW + 1, LEASE) is ClaimOutcome.CLAIMED
        assert marks.claim("notifications", "e-1", "t-2", NOW + 2, LEASE) is ClaimOutcome.BUSY

    def test_a_release_leaves_a_mark_done_on_its_token_done(self, marks: Marks):
        # Given an effect and its mark written together, whose worker then failed (its answer lost)
        marks.claim("commission", "e-1", "t-1", NOW, LEASE)
        marks.complete("commission", "e-1", "t-1", NOW + 1)
        # When the worker releases its claim
        marks.release("commission", "e-1", "t-1")
        # Then the event stays done for every redelivery
        assert marks.claim("commission", "e-1", "t-2", NOW + 2, LEASE) is ClaimOutcome.DONE

    def test_releasing_an_event_nobody_marked_is_harmless(self, marks: Marks):
        marks.release("notifications", "e-never", "t-1")
        assert marks.claim("notifications", "e-never", "t-2", NOW, LEASE) is ClaimOutcome.CLAIMED

    def test_completing_after_the_claim_was_released_still_marks_the_event_done(self, marks: Marks):
        # Given the effect happened but the claim was released meanwhile (e.g. a late release)
        marks.claim("notifications", "e-1", "t-1", NOW, LEASE)
        marks.release("notifications", "e-1", "t-1")
        # When the worker completes
        marks.complete("notifications", "e-1", "t-1", NOW + 5)
        # Then redeliveries skip it
        assert marks.claim("notifications", "e-1", "t-2", NOW + 6, LEASE) is ClaimOutcome.DONE

    def test_marks_are_per_consumer(self, marks: Marks):
        marks.claim("notifications", "e-1", "t-1", NOW, LEASE)
        marks.complete("notifications", "e-1", "t-1", NOW + 1)
        assert marks.claim("commission", "e-1", "t-2", NOW + 2, LEASE) is ClaimOutcome.CLAIMED
        assert marks.claim("notifications", "e-2", "t-3", NOW + 2, LEASE) is ClaimOutcome.CLAIMED
