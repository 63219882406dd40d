"""The stub's HTTP and WebSocket API, as the real school server answers."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from typing import Any
from urllib.parse import urlsplit

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from server_stub.admin import admin_routes
from server_stub.state import TOKEN_RE, Screen, StubState

log = structlog.get_logger(__name__)

PORTAL_PAGE = (
    "<!doctype html><html><head><title>Guest Wi-Fi</title></head><body>"
    "<h1>Guest Wi-Fi login</h1><form><input name=user></form></body></html>"
)
BUILDING_STATE = {
    "type": "BUILDING",
    "label": "جاري تجهيز الجدول...",
    "from": None,
    "to": None,
    "remaining_seconds": 0,
}


def create_app(state: StubState) -> Starlette:
    """The ASGI app serving ``state``."""
    api = Api(state)
    routes = [
        Route("/api/display/status/{token}/", api.status),
        Route("/api/display/snapshot/{token}/", api.snapshot),
        Route("/s/{code}/", api.short_code_page),
        Route("/", api.display_page),
        WebSocketRoute("/ws/display/", api.websocket),
        *admin_routes(state, api),
    ]
    app = Starlette(
        routes=routes, middleware=[Middleware(GZipMiddleware, minimum_size=500)]
    )
    app.state.stub = state
    return app


def _403(body: dict[str, Any]) -> JSONResponse:
    """A 403 with a JSON body, as the real server refuses."""
    return JSONResponse(body, status_code=403)


class Api:
    """The display endpoints (A2, A3, A5) and the pushes admin calls trigger."""

    def __init__(self, state: StubState) -> None:
        self.state = state

    # -- helpers ---------------------------------------------------------------

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Server time, school id and no-store, plus ``extra``."""
        headers = {
            "X-Server-Time-MS": str(self.state.now_ms()),
            "X-School-Id": str(self.state.school.school_id),
            "Cache-Control": "no-store, max-age=0",
        }
        headers.update(extra or {})
        return headers

    async def _fault(self) -> Response | None:
        """The answer a configured network fault gives instead of the real one."""
        faults = self.state.faults
        if faults.get("slow_s"):
            await asyncio.sleep(float(faults["slow_s"]))
        if faults.get("http_status"):
            code = int(faults["http_status"])
            return Response(
                f"error {code}\n", status_code=code, media_type="text/plain"
            )
        if faults.get("captive_portal"):
            return HTMLResponse(PORTAL_PAGE)
        if faults.get("redirect"):
            return Response(
                status_code=302, headers={"Location": "http://portal.invalid/login"}
            )
        if faults.get("bad_json"):
            return Response('{"fetch_required": tr', media_type="application/json")
        return None

    def _screen(self, token: str) -> tuple[Screen | None, Response | None]:
        """The screen for ``token``, or the 403 the real server gives instead."""
        if not TOKEN_RE.fullmatch(token.lower()):
            return None, _403(
                {"detail": "access_denied", "message": "Token format invalid"}
            )
        screen = self.state.screens.get(token.lower())
        if screen is None:
            return None, _403({"error": "Invalid display token"})
        return screen, None

    @staticmethod
    def _device_key(request: Request) -> str | None:
        """The key from X-Display-Device or dk=, cut to 64 characters."""
        key = request.headers.get("X-Display-Device") or request.query_params.get("dk")
        return key[:64] if key else None

    def _bound_elsewhere(self) -> JSONResponse:
        """The 403 for a key other than the one that owns the screen."""
        return _403(
            {
                "detail": "screen_bound",
                "message": "This screen is bound to another device.",
            }
        )

    async def _admit(
        self, request: Request, counter: str
    ) -> tuple[Screen | None, Response | None]:
        """Count the call, then apply faults and the token checks, in that order."""
        self.state.counters[counter] += 1
        fault = await self._fault()
        if fault is not None:
            return None, fault
        return self._screen(request.path_params["token"])

    # -- endpoints ---------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        """A2: cheap revision check; never builds a snapshot."""
        screen, refusal = await self._admit(request, "status")
        if refusal is not None:
            return refusal
        assert screen is not None
        device_key = self._device_key(request)
        if device_key and not self.state.claim(screen, device_key):
            return self._bound_elsewhere()
        faults = self.state.faults
        if faults.get("status_legacy_false"):
            return JSONResponse({"fetch_required": False}, headers=self._headers())
        if faults.get("status_fetch_required_only"):
            return JSONResponse({"fetch_required": True}, headers=self._headers())
        revision = self.state.revision
        body: dict[str, Any] = {"fetch_required": True, "schedule_revision": revision}
        if screen.reload:
            body["reload"] = True
        flagged = screen.refresh or screen.reload
        screen.refresh = screen.reload = False
        seen = request.query_params.get("v") or request.query_params.get("rev")
        if not flagged and seen is not None and seen.strip() == str(revision):
            return Response(
                status_code=304,
                headers=self._headers({"X-Schedule-Revision": str(revision)}),
            )
        return JSONResponse(body, headers=self._headers())

    async def snapshot(self, request: Request) -> Response:
        """A3: the full snapshot with ETag, 304 and cache headers."""
        state = self.state
        screen, refusal = await self._admit(request, "snapshot")
        if refusal is not None:
            return refusal
        assert screen is not None
        device_key = self._device_key(request)
        if not device_key:
            return _403(
                {"detail": "device_required", "message": "Device key required."}
            )
        if not state.claim(screen, device_key):
            return self._bound_elsewhere()
        if state.rate_limited(screen):
            return JSONResponse(
                {"detail": "rate_limited"},
                status_code=429,
                headers=self._headers({"Retry-After": "1"}),
            )
        if state.looping(screen) or state.faults.get("loop"):
            return self._placeholder("config", "LOOP")
        if state.faults.get("building"):
            return self._placeholder("BUILDING", "QUEUED")
        if state.faults.get("config_placeholder"):
            return self._placeholder("config", "ERROR")

        built, cache = state.snapshot()
        body = built.body
        etag = built.etag
        previous = state.previous()
        if state.faults.get("stale") and previous is not None:
            body = copy.deepcopy(previous.body)
            body["meta"]["is_stale"] = True
            body["meta"]["cache"] = "STALE"
            etag, cache = previous.etag, "STALE"
        headers = self._headers(
            {
                "ETag": etag,
                "X-Revision": str(state.revision),
                "X-Snapshot-Cache": cache,
            }
        )
        if _etag_matches(request.headers.get("If-None-Match"), etag):
            return Response(status_code=304, headers=headers)
        if cache != "STALE":
            body = {**body, "meta": {**body["meta"], "cache": cache}}
        return JSONResponse(body, headers=headers)

    def _placeholder(self, state_type: str, cache: str) -> JSONResponse:
        """A snapshot-shaped placeholder (BUILDING or config), not data."""
        now = self.state.now()
        school = self.state.school
        body: dict[str, Any] = {
            "now": school.local(now).isoformat(),
            "meta": {
                "weekday": school.local(now).isoweekday(),
                "schedule_revision": self.state.revision,
                "school_id": school.school_id,
                "cache": "FALLBACK" if state_type == "BUILDING" else cache,
                "reason": "queued" if state_type == "BUILDING" else cache.lower(),
            },
            "settings": {
                "name": "",
                "logo_url": None,
                "theme": "indigo",
                "refresh_interval_sec": 3,
            },
            "state": dict(BUILDING_STATE)
            if state_type == "BUILDING"
            else {
                "type": "config",
                "label": "Display configuration error",
                "from": None,
                "to": None,
                "remaining_seconds": 0,
            },
            "day_path": [],
            "current_period": None,
            "next_period": None,
            "period_classes": [],
            "period_classes_map": {},
            "standby": [],
            "excellence": [],
            "announcements": [],
        }
        headers = {"X-Snapshot-Cache": cache, "X-Revision": str(self.state.revision)}
        return JSONResponse(body, headers=self._headers(headers))

    async def short_code_page(self, request: Request) -> Response:
        """The people-facing page; its body carries the real token."""
        screen = self.state.screen_for_code(request.path_params["code"])
        if screen is None:
            return HTMLResponse(
                "<!doctype html><title>Not found</title><h1>Not found</h1>",
                status_code=404,
            )
        return HTMLResponse(_display_html(screen.token))

    async def display_page(self, request: Request) -> Response:
        """``/?token=<token-or-code>``: the browser display page."""
        value = request.query_params.get("token", "")
        screen = self.state.screens.get(value.lower()) or self.state.screen_for_code(
            value
        )
        if screen is None:
            return HTMLResponse("<!doctype html><h1>Not found</h1>", status_code=404)
        return HTMLResponse(_display_html(screen.token))

    # -- WebSocket -----------------------------------------------------------------

    async def websocket(self, socket: WebSocket) -> None:
        """A5: refusals at the handshake (403) or, in close style, after accept."""
        state = self.state
        state.counters["ws_connects"] += 1
        code = self._ws_refusal(socket)
        if code is not None:
            log.info("ws_refused", code=code, style=state.ws_reject_style)
            if state.ws_reject_style == "close":
                await socket.accept()
                await socket.close(code)
            else:
                await socket.close(1008)  # before accept: uvicorn answers HTTP 403
            return

        await socket.accept()
        if state.faults.get("ws_drop") == "always":
            await socket.close(1012)
            return
        state.sockets.add(socket)
        beat = asyncio.create_task(self._heartbeat(socket), name="stub-heartbeat")
        try:
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if state.faults.get("ws_silent"):
                    continue
                if _is_ping(message.get("text")):
                    await socket.send_text('{"type":"pong"}')
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            state.sockets.discard(socket)
            beat.cancel()

    def _ws_refusal(self, socket: WebSocket) -> int | None:
        """The close code a connection is refused with, or None to accept it."""
        state = self.state
        token = (socket.query_params.get("token") or "").lower()
        # Cut like the HTTP endpoints, so one long key binds the same everywhere.
        device_key = (socket.query_params.get("dk") or "")[:64]
        screen = state.screens.get(token)
        origin = socket.headers.get("origin")
        host = socket.headers.get("host", "")
        if not token or not device_key:
            return 4400
        if screen is None or not origin or urlsplit(origin).netloc != host:
            return 4403
        if not state.claim(screen, device_key):
            return 4408
        if state.faults.get("ws_refuse") or not state.ws_enabled:
            return 4403
        if state.max_sockets is not None and len(state.sockets) >= state.max_sockets:
            return 4429
        return None

    async def _heartbeat(self, socket: WebSocket) -> None:
        """Send a heartbeat every ``heartbeat_s`` until the socket goes."""
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(self.state.heartbeat_s)
                if self.state.faults.get("ws_silent"):
                    continue
                await socket.send_text('{"type":"heartbeat"}')

    async def broadcast(self, message: dict[str, Any], *, force: bool = False) -> bool:
        """Send to every socket; inside the drop window a push is lost (False).

        ``force`` sends regardless of the window and leaves the window alone.
        While ws_silent is on nothing reaches the sockets, as on a dead link.
        """
        state = self.state
        loop_now = asyncio.get_running_loop().time()
        if not force:
            if loop_now - state.last_push_at < state.push_drop_window_s:
                state.counters["pushes_dropped"] += 1
                log.info("push_dropped", kind=message.get("type"))
                return False
            state.last_push_at = loop_now
        state.counters["pushes"] += 1
        log.info("push_sent", kind=message.get("type"), sockets=len(state.sockets))
        if state.faults.get("ws_silent"):
            return True
        text = json.dumps(message)
        for socket in list(state.sockets):
            try:
                await socket.send_text(text)
            except Exception:
                state.sockets.discard(socket)
        return True

    async def close_sockets(self, code: int) -> None:
        """Close every open socket with ``code``."""
        for socket in list(self.state.sockets):
            with contextlib.suppress(Exception):
                await socket.close(code)
            self.state.sockets.discard(socket)


def _etag_matches(header: str | None, etag: str) -> bool:
    """Compare like the real server: strip W/ and one pair of quotes, no lists."""
    if not header:
        return False
    value = header.strip()
    value = value.removeprefix("W/")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value == etag.strip('"')


def _is_ping(raw: str | None) -> bool:
    """True for a text frame holding a JSON object of type ping; never raises."""
    if raw is None:
        return False
    try:
        message = json.loads(raw)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping"


def _display_html(token: str) -> str:
    """The display page carrying ``token`` in its body attributes."""
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>Display</title></head>"
        f'<body data-api-token="{token}" data-token="{token}">'
        "<p>School display</p></body></html>"
    )
