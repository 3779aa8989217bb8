"""Which failures are the infrastructure's (never counted against a stage) and which are the stage's own."""

from __future__ import annotations

import pytest
import redis
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from kombu.exceptions import OperationalError as KombuOperationalError

from workers.base import InfrastructureUnavailable, is_infrastructure_error, wait_for_infrastructure
from workers.engines.base import PermanentEngineError, TransientEngineError


@pytest.mark.parametrize("error", [
    OperationalError("connection to server at 127.0.0.1 failed: Connection refused"),
    InterfaceError("connection already closed"),
    redis.ConnectionError("Error 111 connecting to 127.0.0.1:26380"),
    redis.TimeoutError("Timeout reading from socket"),
    KombuOperationalError("[Errno 111] Connection refused"),
    EndpointConnectionError(endpoint_url="http://127.0.0.1:8333"),
    ConnectTimeoutError(endpoint_url="http://127.0.0.1:8333"),
], ids=type)
def test_unreachable_dependencies_are_infrastructure_errors(error):
    assert is_infrastructure_error(error)


@pytest.mark.parametrize("error", [
    DataError("invalid input syntax for type uuid"), IntegrityError("duplicate key"), ValueError("bad frame"),
    TransientEngineError("model busy"), PermanentEngineError("corrupt media"), OSError(28, "No space left"),
    redis.ResponseError("WRONGTYPE"),
], ids=type)
def test_the_stages_own_failures_are_not(error):
    assert not is_infrastructure_error(error)


def test_waiting_retries_until_the_dependency_answers(settings):
    settings.MEDIAINTEL_INFRA_WAIT = 10
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return "claimed"

    assert wait_for_infrastructure(flaky, "claim") == "claimed" and len(calls) == 3


def test_waiting_gives_up_after_the_bound_and_never_swallows_other_errors(settings):
    settings.MEDIAINTEL_INFRA_WAIT = 1

    def down():
        raise OperationalError("Connection refused")

    with pytest.raises(InfrastructureUnavailable, match="claim: OperationalError"):
        wait_for_infrastructure(down, "claim")

    def bug():
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        wait_for_infrastructure(bug, "claim")
