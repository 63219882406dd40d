"""The ``pair`` command's work: resolve, check against the server, store, explain."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

import httpx

from agent.config import Settings
from agent.errors import PairingError, RejectedError, Rejection, TransientError
from agent.identity import key_hint, load_or_create
from agent.pairing import Pairing, PairingStore, parse_reference, resolve_short_code
from agent.redact import token_hint
from agent.transport.http import ServerApi


@dataclass(frozen=True)
class PairReport:
    ok: bool
    message: str


async def pair(settings: Settings, reference: str, *, check: bool = True) -> PairReport:
    """Pair this screen; the report's message says plainly what happened."""
    try:
        ref = parse_reference(reference)
    except PairingError as exc:
        return PairReport(False, f"Not paired: {exc}.")
    server = ref.server_url or settings.server_url
    if server is None:
        return PairReport(
            False,
            "Not paired: no server known. Give a full display URL, or set "
            "server_url in the config (or --server).",
        )
    token = ref.token
    if token is None:
        assert ref.short_code is not None
        try:
            token = await resolve_short_code(
                server, ref.short_code, timeout_s=settings.request_timeout_s
            )
        except PairingError as exc:
            return PairReport(False, f"Not paired: {exc}.")

    pairing = Pairing(server, token)
    device_key = load_or_create(settings.state_dir)
    who = f"token {token_hint(token)} on {server}"
    if check:
        problem = await _check(pairing, device_key, settings.request_timeout_s)
        if problem is not None:
            return PairReport(False, f"Not paired ({who}): {problem}")
    PairingStore(settings).save(pairing)
    checked = "checked with the server" if check else "not checked"
    return PairReport(
        True,
        f"Paired: {who}, {checked}; device key {key_hint(device_key)}…. "
        f"The token is stored in {settings.token_path}.",
    )


async def _check(pairing: Pairing, device_key: str, timeout_s: float) -> str | None:
    """None if the server accepts the token for this device, else why not."""
    async with ServerApi(
        pairing.server_url, pairing.token, device_key, timeout_s=timeout_s
    ) as api:
        try:
            await api.status(None)
        except RejectedError as exc:
            if exc.code is Rejection.SCREEN_BOUND:
                return (
                    "the screen is already bound to another device. Ask the "
                    "administrator to unbind it; this device's key starts with "
                    f"{key_hint(device_key)}."
                )
            return f"the server rejected the token ({exc})."
        except TransientError as exc:
            return f"the server could not be reached: {explain_unreachable(exc)}"
    return None


def explain_unreachable(error: BaseException) -> str:
    """Name the layer that failed: DNS, refused, TLS (and the clock), timeout."""
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror):
            return "DNS lookup failed (check the server name and the network's DNS)."
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                "TLS certificate check failed. If this device's clock is wrong "
                "(a Pi without a real-time clock can boot in 1970), fix the time "
                "first; otherwise the server's certificate is not trusted."
            )
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is the server running, is the port right?)."
        if isinstance(cause, httpx.TimeoutException | TimeoutError):
            return "the connection timed out (firewall, proxy or a slow network)."
    return f"{error}."


def _causes(error: BaseException) -> list[BaseException]:
    """The error and everything chained under it, outermost first."""
    chain = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
