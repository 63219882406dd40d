"""The admin API that tests and the demo use to edit the school and break things."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server_stub.state import StubState

if TYPE_CHECKING:
    from server_stub.app import Api

log = structlog.get_logger(__name__)

FAULTS = frozenset(
    {
        "http_status",
        "slow_s",
        "captive_portal",
        "redirect",
        "bad_json",
        "building",
        "config_placeholder",
        "loop",
        "stale",
        "ws_refuse",
        "ws_silent",
        "ws_drop",
        "status_fetch_required_only",
        "status_legacy_false",
        "legacy_push",
    }
)

Handler = Callable[[Request], Awaitable[JSONResponse]]


def admin_routes(state: StubState, api: Api) -> list[Route]:
    """The /admin/ routes, each answering only loopback clients."""
    admin = Admin(state, api)
    table: list[tuple[str, str, Handler]] = [
        ("/admin/state", "GET", admin.get_state),
        ("/admin/announce", "POST", admin.announce),
        ("/admin/edit", "POST", admin.edit),
        ("/admin/bump", "POST", admin.bump),
        ("/admin/push", "POST", admin.push),
        ("/admin/unbind", "POST", admin.unbind),
        ("/admin/ws_enabled", "POST", admin.ws_enabled),
        ("/admin/flags", "POST", admin.flags),
        ("/admin/revision", "POST", admin.revision),
        ("/admin/clock", "POST", admin.clock),
        ("/admin/faults", "POST", admin.set_faults),
        ("/admin/faults", "DELETE", admin.clear_faults),
    ]
    return [
        Route(path, _loopback_only(_bad_input_is_400(handler)), methods=[method])
        for path, method, handler in table
    ]


def _bad_input_is_400(handler: Handler) -> Handler:
    """Answer 400, not a server crash, to a body or value that does not parse."""

    async def guarded(request: Request) -> JSONResponse:
        try:
            return await handler(request)
        except (ValueError, TypeError) as exc:
            return _error(f"bad request body: {exc}")

    return guarded


def _loopback_only(handler: Handler) -> Handler:
    """Refuse with 403 any client that is not on this machine."""

    async def guarded(request: Request) -> JSONResponse:
        host = request.client.host if request.client else ""
        if not _is_loopback(host):
            return JSONResponse(
                {"error": "admin API is loopback only"}, status_code=403
            )
        return await handler(request)

    return guarded


def _is_loopback(host: str) -> bool:
    """True for a loopback address (127.0.0.0/8, ::1); False for anything else."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _body(request: Request) -> dict[str, Any]:
    """The request's JSON object; an empty body is {}; raises ValueError else."""
    raw = await request.body()
    if not raw:
        return {}
    data = await request.json()
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _int(value: object) -> int:
    """An announcement id as a number; ids a test chose freely count as 0."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def _error(message: str) -> JSONResponse:
    """A 400 naming what was wrong with the request."""
    return JSONResponse({"error": message}, status_code=400)


class Admin:
    """The admin handlers; each changes ``state`` and answers JSON."""

    def __init__(self, state: StubState, api: Api) -> None:
        self.state = state
        self.api = api

    async def _changed(self, push: bool = True) -> JSONResponse:
        """Bump the revision and push it, as a staff edit does."""
        revision = self.state.bump()
        pushed = False
        if push:
            kind = (
                "invalidate"
                if self.state.faults.get("legacy_push")
                else "snapshot_refresh"
            )
            message: dict[str, Any] = {"type": kind, "revision": revision}
            if kind == "snapshot_refresh":
                message["reason"] = "content_changed"
            pushed = await self.api.broadcast(message)
        return JSONResponse({"revision": revision, "pushed": pushed})

    async def get_state(self, request: Request) -> JSONResponse:
        """Revision, ws_enabled, bindings, faults, sockets and request counters."""
        return JSONResponse(self.state.describe())

    async def announce(self, request: Request) -> JSONResponse:
        """Add or replace an announcement, bump the revision and push."""
        body = await _body(request)
        if not isinstance(body.get("title"), str):
            return _error("title (a string) is required")
        items = self.state.school.data.setdefault("announcements", [])
        ident = body.get("id") or max((_int(a.get("id")) for a in items), default=0) + 1
        item = {
            "id": ident,
            "title": body["title"],
            "body": str(body.get("body", "")),
            "level": str(body.get("level", "info")),
            "expires_at": None,
        }
        items[:] = [a for a in items if a.get("id") != ident] + [item]
        return await self._changed()

    async def edit(self, request: Request) -> JSONResponse:
        """Set one field of the school data by dotted path, bump and push."""
        body = await _body(request)
        path = body.get("path")
        if not isinstance(path, str) or "value" not in body:
            return _error("path (dotted string) and value are required")
        target: Any = self.state.school.data
        *parents, last = path.split(".")
        for part in parents:
            target = target.setdefault(part, {}) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return _error(f"cannot set {path}")
        target[last] = body["value"]
        return await self._changed()

    async def bump(self, request: Request) -> JSONResponse:
        """Bump the revision; push unless {"push": false}."""
        body = await _body(request)
        return await self._changed(push=body.get("push", True) is not False)

    async def push(self, request: Request) -> JSONResponse:
        """Send a raw message to every socket, bypassing the drop window."""
        body = await _body(request)
        if not isinstance(body.get("type"), str):
            return _error("type is required")
        await self.api.broadcast(body, force=True)
        return JSONResponse({"sent_to": len(self.state.sockets)})

    async def unbind(self, request: Request) -> JSONResponse:
        """Release a screen's device binding (every screen without a token)."""
        token = (await _body(request)).get("token")
        for screen in self.state.screens.values():
            if token is None or screen.token == str(token).lower():
                screen.bound_to = None
        return JSONResponse(self.state.describe()["bindings"])

    async def ws_enabled(self, request: Request) -> JSONResponse:
        """Switch push on or off; off closes sockets and refuses new ones."""
        enabled = (await _body(request)).get("enabled") is not False
        self.state.ws_enabled = enabled
        if not enabled:
            await self.api.close_sockets(1000)
        return await self._changed(push=False)

    async def flags(self, request: Request) -> JSONResponse:
        """One-shot refresh/reload flags answered by the next status call."""
        body = await _body(request)
        token = str(body.get("token") or self.state.default_token).lower()
        screen = self.state.screens.get(token)
        if screen is None:
            return _error("unknown token")
        screen.refresh = screen.refresh or body.get("refresh") is True
        screen.reload = screen.reload or body.get("reload") is True
        return JSONResponse({"refresh": screen.refresh, "reload": screen.reload})

    async def revision(self, request: Request) -> JSONResponse:
        """Set the revision, lower too (a server reset)."""
        value = (await _body(request)).get("revision")
        if not isinstance(value, int) or isinstance(value, bool):
            return _error("revision (an integer) is required")
        self.state.set_revision(value)
        return JSONResponse({"revision": value})

    async def clock(self, request: Request) -> JSONResponse:
        """Set the clock: {"now": ISO} | {"offset_s": N} | {"real": true}, "frozen"?"""
        body = await _body(request)
        frozen = body.get("frozen") is True
        if "now" in body:
            when = datetime.fromisoformat(str(body["now"]))
            if when.tzinfo is None:
                return _error("now needs a UTC offset")
            self.state.set_clock(now=when, frozen=frozen)
        elif "offset_s" in body:
            self.state.set_clock(offset_s=float(body["offset_s"]), frozen=frozen)
        elif body.get("real") is True:
            self.state.set_clock(real=True, frozen=frozen)
        elif "frozen" in body:
            self.state.set_clock(frozen=frozen)
        else:
            return _error("give now, offset_s, real or frozen")
        now = self.state.school.local(self.state.now())
        return JSONResponse({"now": now.isoformat(), "frozen": frozen})

    async def set_faults(self, request: Request) -> JSONResponse:
        """Switch faults on (merged with those already on); false switches one off."""
        body = await _body(request)
        unknown = sorted(set(body) - FAULTS)
        if unknown:
            return _error(f"unknown fault(s): {', '.join(unknown)}")
        for name, value in body.items():
            if value in (False, None, 0):
                self.state.faults.pop(name, None)
            else:
                self.state.faults[name] = value
        log.info("faults_set", faults=sorted(self.state.faults))
        # Sockets already open would never learn of these; close them as a
        # restarting server would.
        if body.get("ws_drop") or body.get("ws_refuse"):
            await self.api.close_sockets(1012)
        return JSONResponse(self.state.faults)

    async def clear_faults(self, request: Request) -> JSONResponse:
        """Switch every fault off."""
        self.state.faults.clear()
        log.info("faults_cleared")
        return JSONResponse({})
