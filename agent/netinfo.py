"""This device's name and addresses, for the pairing screen a technician reads."""

from __future__ import annotations

import fcntl
import socket
import struct

_SIOCGIFADDR = 0x8915


def hostname() -> str:
    return socket.gethostname()


def ipv4_addresses() -> list[str]:
    """IPv4 addresses of the non-loopback interfaces, read locally (no traffic)."""
    addresses = []
    for _, name in socket.if_nameindex():
        if name == "lo":
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                packed = fcntl.ioctl(
                    probe.fileno(),
                    _SIOCGIFADDR,
                    struct.pack("256s", name[:15].encode()),
                )
            except OSError:
                continue  # interface down or without an IPv4 address
        addresses.append(socket.inet_ntoa(packed[20:24]))
    return addresses


def describe_device() -> str:
    """``name (addr, addr)`` or just the name when it has no address yet."""
    addresses = ipv4_addresses()
    return f"{hostname()} ({', '.join(addresses)})" if addresses else hostname()
