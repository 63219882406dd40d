"""Tests for agent.health: the sd_notify client against a real datagram socket."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent.health import Notifier


class FakeManager:
    """The receiving end of a notify socket, as systemd would hold it."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2)

    def receive(self) -> str:
        """The next datagram, decoded; fails the test after two seconds."""
        return self.sock.recv(4096).decode()

    def pending(self) -> bool:
        """True if a datagram is waiting."""
        self.sock.setblocking(False)
        try:
            self.sock.recv(4096, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        finally:
            self.sock.settimeout(2)
        return True


@pytest.fixture
def socket_path() -> Iterator[str]:
    # pytest's tmp_path can exceed the 108-byte limit of AF_UNIX addresses.
    with tempfile.TemporaryDirectory(prefix="sdn-") as folder:
        yield str(Path(folder) / "notify")


@pytest.fixture
def manager(socket_path: str) -> Iterator[FakeManager]:
    fake = FakeManager(socket_path)
    yield fake
    fake.sock.close()


@pytest.fixture
def notifier(socket_path: str, manager: FakeManager) -> Iterator[Notifier]:
    client = Notifier(socket_path)
    yield client
    client.close()


def test_ready_sends_ready_and_status(notifier: Notifier, manager: FakeManager) -> None:
    """ready() sends READY=1 and the status line in one datagram."""
    notifier.ready("showing cached timetable")

    assert manager.receive() == "READY=1\nSTATUS=showing cached timetable"


def test_ready_without_status_sends_only_ready(
    notifier: Notifier, manager: FakeManager
) -> None:
    """ready() with no text sends READY=1 alone."""
    notifier.ready()

    assert manager.receive() == "READY=1"


def test_watchdog_sends_watchdog(notifier: Notifier, manager: FakeManager) -> None:
    """watchdog() sends WATCHDOG=1."""
    notifier.watchdog()

    assert manager.receive() == "WATCHDOG=1"


def test_stopping_sends_stopping(notifier: Notifier, manager: FakeManager) -> None:
    """stopping() sends STOPPING=1."""
    notifier.stopping()

    assert manager.receive() == "STOPPING=1"


def test_status_repeat_is_skipped(notifier: Notifier, manager: FakeManager) -> None:
    """The same status twice in a row is sent once."""
    notifier.status("online")
    notifier.status("online")
    notifier.status("offline")

    assert manager.receive() == "STATUS=online"
    assert manager.receive() == "STATUS=offline"
    assert not manager.pending()


def test_status_after_ready_with_same_text_is_skipped(
    notifier: Notifier, manager: FakeManager
) -> None:
    """A status equal to the one sent with READY is not sent again."""
    notifier.ready("online")
    notifier.status("online")

    assert manager.receive() == "READY=1\nSTATUS=online"
    assert not manager.pending()


def test_status_newlines_are_folded(notifier: Notifier, manager: FakeManager) -> None:
    """A multi-line status cannot inject another notify field."""
    notifier.status("offline\nREADY=1")

    assert manager.receive() == "STATUS=offline READY=1"


def test_abstract_socket_name_is_used() -> None:
    """A NOTIFY_SOCKET starting with '@' reaches the abstract namespace."""
    name = f"kiosk-agent-test-{os.getpid()}"
    fake = FakeManager(b"\0" + name.encode())
    client = Notifier(f"@{name}")
    try:
        client.watchdog()
        assert fake.receive() == "WATCHDOG=1"
    finally:
        client.close()
        fake.sock.close()


def test_socket_path_defaults_to_environment(
    socket_path: str, manager: FakeManager
) -> None:
    """With no argument the socket comes from NOTIFY_SOCKET."""
    client = Notifier(environ={"NOTIFY_SOCKET": socket_path})
    client.ready()

    assert client.enabled
    assert manager.receive() == "READY=1"
    client.close()


def test_unset_socket_is_disabled_noop() -> None:
    """Without NOTIFY_SOCKET the notifier is disabled and calls do nothing."""
    client = Notifier(environ={})

    client.ready("x")
    client.watchdog()

    assert not client.enabled


def test_relative_socket_path_is_disabled() -> None:
    """A NOTIFY_SOCKET that is neither absolute nor abstract is ignored."""
    with capture_logs() as logs:
        client = Notifier("relative/notify")

    assert not client.enabled
    assert logs[0]["event"] == "notify_socket_invalid"


def test_closed_notifier_sends_nothing(
    notifier: Notifier, manager: FakeManager
) -> None:
    """After close() every call is a no-op."""
    notifier.close()
    notifier.watchdog()

    assert not notifier.enabled
    assert not manager.pending()


def test_send_failure_does_not_raise_and_warns_once(socket_path: str) -> None:
    """A missing socket logs one WARNING, then DEBUG, and never raises."""
    client = Notifier(socket_path)
    with capture_logs() as logs:
        client.watchdog()
        client.watchdog()
    client.close()

    assert [e["log_level"] for e in logs] == ["warning", "debug"]
    assert all(e["event"] == "notify_failed" for e in logs)


def test_send_after_failure_logs_recovery(socket_path: str) -> None:
    """The first success after a failure is logged once at INFO."""
    client = Notifier(socket_path)
    with capture_logs() as logs:
        client.watchdog()
        fake = FakeManager(socket_path)
        client.watchdog()
        client.watchdog()
    client.close()
    fake.sock.close()

    assert [e["event"] for e in logs] == ["notify_failed", "notify_recovered"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "60000000"}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getppid())}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "0"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
    ids=["no-pid", "own-pid", "parent-pid", "other-pid", "zero", "garbage", "unset"],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    env: dict[str, str], expected: float | None
) -> None:
    """The interval is half WATCHDOG_USEC, only when the ping is ours to send."""
    client = Notifier(environ=env)

    assert client.watchdog_interval_s() == expected
