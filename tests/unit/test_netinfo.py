"""The pairing screen's device description comes from local interfaces only."""

from __future__ import annotations

import ipaddress
import socket

from agent.netinfo import describe_device, ipv4_addresses


def test_addresses_are_ipv4_and_not_loopback() -> None:
    """Every address listed parses as IPv4 and none is 127.x."""
    for address in ipv4_addresses():
        parsed = ipaddress.IPv4Address(address)
        assert not parsed.is_loopback


def test_description_starts_with_the_hostname() -> None:
    """A technician reads the device's name first."""
    assert describe_device().startswith(socket.gethostname())
