"""shared.data.transactions.translated: what a failed single-item call becomes (pure: no emulator)."""

from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from pynamodb.exceptions import GetError, QueryError

from shared.data.transactions import translated
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
