"""shared.data.transactions.translated: what a failed single-item call becomes (pure: no emulator)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from pynamodb.exceptions import DeleteError, GetError, PutError, QueryError

from shared.data.transactions import condition_failed, translated
from shared.kernel.errors import TemporarilyUnavailable


@pytest.mark.parametrize(
    "cause",
    [ReadTimeoutError(endpoint_url="http://127.0.0.1:5100/"), EndpointConnectionError(endpoint_url="http://x")],
)
@pytest.mark.parametrize("error", [QueryError, GetError])
def test_a_timeout_under_pynamodb_is_temporarily_unavailable_not_a_crash(cause, error):
    # A read timeout's cause carries response=None, on which cause_response_code raised AttributeError
    with pytest.raises(TemporarilyUnavailable), translated():
        raise error("Failed to query items", cause)


@pytest.mark.parametrize("error", [PutError, DeleteError])
def test_a_timed_out_conditional_write_is_not_a_refused_condition_and_not_a_crash(error):
    # The stores ask `condition_failed` inside `translated()`: a timeout must fall through to a 503
    refused = error("refused", ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "PutItem"))
    throttled = error("busy", ClientError({"Error": {"Code": "ThrottlingException"}}, "PutItem"))
    timed_out = error("timeout", ReadTimeoutError(endpoint_url="http://127.0.0.1:5100/"))
    assert (condition_failed(refused), condition_failed(throttled), condition_failed(timed_out)) == (True, False, False)
