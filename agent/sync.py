"""The coordinator: the one place that decides when to fetch and what to show.

It runs the poller and the push listener side by side in one task group. The
poller asks it to check; the listener tells it something changed; it fetches,
decides whether a snapshot is real data newer than what is on screen, stores
it, and hands it to the renderer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from agent.clock import ServerClock
from agent.config import Settings
from agent.errors import NotReadyError, RejectedError, Rejection
from agent.health import Notifier
from agent.identity import IdentityError, key_hint, load_or_create
from agent.netinfo import describe_device
from agent.pairing import NOT_PAIRED, Pairing, PairingStore
from agent.redact import token_hint
from agent.render.base import NoticeKind, Renderer
from agent.render.view import build_view
from agent.state import StatusFile, utc_now_iso
from agent.store import Cached, SnapshotStore
from agent.transport.http import (
    ServerApi,
    SnapshotFresh,
    SnapshotNotModified,
    SnapshotPlaceholder,
    StatusChanged,
    StatusOutcome,
    StatusUnchanged,
    describe,
)
from agent.transport.poller import Cadence, Check, IntervalPolicy, Poller, Result
from agent.transport.push import (
    EventKind,
    PushEvent,
    PushListener,
    PushState,
    push_url,
)

log = structlog.get_logger(__name__)

# A burst of pushes inside this window becomes one fetch.
PUSH_COALESCE_S = 0.5
# The server drops a second push for a school within ~3 s; one status check
# after that window catches the edit whose push was dropped.
FOLLOW_UP_S = 4.0
# A server that keeps reporting a lower revision this long has really been reset.
RESET_CONFIRM_S = 300.0
# How soon to ask again after the server sent an older body than the one shown.
OLDER_RETRY_S = 30.0
# How soon to ask again when a 304 comes with a newer revision header.
NOT_MODIFIED_RETRY_S = 3.0
WAKE_JITTER_MAX_S = 30.0
# Pauses between the fetches made at a day boundary (server cache lasts ~5 min).
BOUNDARY_REFETCH_S = (0.0, 150.0, 210.0)
IDENTITY_RETRY_S = 30.0
PAIRING_RECHECK_S = 5.0
HOUSEKEEPING_S = 5.0
# How long a refused WebSocket rests before it is tried again while HTTP works.
PUSH_REARM_S = 300.0
# While offline, how often the log says the agent is still trying.
OFFLINE_REMIND_S = 300.0
CONNECTING = "Connecting to the school server…"
PAIRING_HELP = (
    "To pair it, run  kiosk-agent pair <token or display URL>  on this device, "
    "or put kiosk-agent.toml with server_url and token on the boot partition "
    "and restart."
)
CLOCK_RERENDER_MS = 2_000.0


class Coordinator:
    """Keeps one screen current until cancelled.

    :meth:`run` returns only by cancellation; it shows the cached snapshot
    before any network I/O and never exits on network, server or disk faults.
    """

    def __init__(
        self,
        settings: Settings,
        renderer: Renderer,
        *,
        notifier: Notifier | None = None,
    ) -> None:
        self._settings = settings
        self._renderer = renderer
        self._notifier = notifier or Notifier()
        self._store = SnapshotStore(settings.state_dir)
        self._pairing_store = PairingStore(settings)
        self._status = StatusFile(settings.state_dir)
        self._clock = ServerClock()

        self._device_key = ""
        self._pairing: Pairing | None = None
        self._cached: Cached | None = None
        self._server_revision: int | None = None
        self._lower_since: float | None = None
        self._offline_since: datetime | None = None
        self._offline_reminded_at = 0.0
        self._notice: NoticeKind | None = None
        self._reload_pending = False
        self._push_started_at: float | None = None
        self._last_fetch_at = -PUSH_COALESCE_S

        self._poller: Poller | None = None
        self._listener: PushListener | None = None
        self._push_armed = True
        self._push_changed = asyncio.Event()
        self._push_was_healthy = False
        self._background: set[asyncio.Task[Any]] = set()
        self._boundaries_changed = asyncio.Event()
        self._rendered_offset_ms = 0.0
        self._rejection: Rejection | None = None
        self._not_ready = False
        self._push_stopped_at = 0.0
        self._render_failed = False

    @property
    def _applied_revision(self) -> int | None:
        return self._cached.revision if self._cached else None

    @property
    def _owner(self) -> str | None:
        return self._pairing.owner if self._pairing else None

    @property
    def _ws_enabled(self) -> bool:
        meta = self._meta()
        return meta.get("ws_enabled", True) is not False

    async def run(self) -> None:
        self._status.update(pid=os.getpid(), started_at=utc_now_iso())
        await self._show_cached()
        self._notifier.ready(self._status_line())

        self._device_key = await self._load_identity()
        self._status.update(device_key_hint=key_hint(self._device_key))
        self._pairing = await self._wait_for_pairing()
        if self._drop_cache_of_others(self._pairing):
            await self._notice_screen(NoticeKind.WAITING, CONNECTING)
        self._status.update(paired=True, server=self._pairing.server_url)
        log.info(
            "agent_started",
            server=self._pairing.server_url,
            token=token_hint(self._pairing.token),
            device_key=key_hint(self._device_key),
            revision=self._applied_revision,
        )
        api = ServerApi(
            self._pairing.server_url,
            self._pairing.token,
            self._device_key,
            timeout_s=self._settings.request_timeout_s,
            clock=self._clock,
        )
        async with api:
            self._api = api
            self._poller = Poller(
                IntervalPolicy.for_device(
                    self._device_key,
                    fast_min_s=self._settings.poll_min_s,
                    fast_max_s=self._settings.poll_max_s,
                    slow_min_s=self._settings.idle_poll_min_s,
                    slow_max_s=self._settings.idle_poll_max_s,
                ),
                self._check,
                self._cadence,
                on_failure=self._on_poll_failure,
                on_success=self._on_poll_success,
                on_schedule=self._on_schedule,
            )
            # Start-up fetches the snapshot straight away (B2), conditionally on
            # the cached ETag: a status check would answer 304 the morning after,
            # since a new day changes no revision.
            self._poller.poke(Check.FETCH)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._poller.run(), name="poller")
                group.create_task(self._supervise_push(), name="push-supervisor")
                group.create_task(self._housekeeping(), name="housekeeping")
                group.create_task(self._day_timer(), name="day-timer")

    # -- start-up ---------------------------------------------------------

    async def _show_cached(self) -> None:
        """Put the last good snapshot on screen before touching the network."""
        self._cached = await asyncio.to_thread(self._store.load)
        pairing, _ = self._pairing_store.load()
        if pairing is not None:
            self._drop_cache_of_others(pairing)
        if self._cached is None:
            await self._notice_screen(NoticeKind.WAITING, CONNECTING)
            return
        log.info("cache_shown", revision=self._cached.revision)
        self._server_revision = self._cached.revision
        self._status.update(revision=self._cached.revision, etag=self._cached.etag)
        await self._render()

    def _drop_cache_of_others(self, pairing: Pairing) -> bool:
        """Forget a cached schedule fetched with another token.

        A screen moved to another school must not show the old school's day,
        nor refuse the new one's lower revision as a step back in time.
        """
        cached = self._cached
        if cached is None or cached.owner in (None, pairing.owner):
            return False
        log.warning("cache_of_other_pairing_ignored", revision=cached.revision)
        self._cached = None
        self._server_revision = None
        self._status.update(revision=None, etag=None)
        return True

    async def _load_identity(self) -> str:
        """The device key; while it cannot be read, keep the screen up and retry."""
        warned = False
        while True:
            try:
                return await asyncio.to_thread(load_or_create, self._settings.state_dir)
            except (IdentityError, OSError) as exc:
                if not warned:
                    log.error("device_key_unavailable", error=str(exc))
                    warned = True
                self._status.update(
                    last_error={"code": "device_key", "message": str(exc)}
                )
                await asyncio.sleep(IDENTITY_RETRY_S)

    async def _wait_for_pairing(self) -> Pairing:
        """The server and token; until paired, show how to pair and look again."""
        announced = ""
        firstboot = await asyncio.to_thread(self._pairing_store.consume_firstboot)
        if firstboot:
            log.warning("firstboot_consumed", detail=firstboot)
        while True:
            pairing, problem = self._pairing_store.load()
            if pairing is not None:
                return pairing
            if problem != announced:
                log.warning("not_paired", detail=problem)
                announced = problem
                self._status.update(
                    paired=False, last_error={"code": "unpaired", "message": problem}
                )
                # The notice's title already says "not paired"; other problems
                # (a damaged token file) are worth a line of their own.
                lines = [] if problem == NOT_PAIRED else [problem]
                lines += [PAIRING_HELP, f"This device: {describe_device()}"]
                await self._notice_screen(
                    NoticeKind.UNPAIRED,
                    "\n".join(lines),
                    hint=key_hint(self._device_key),
                )
            await asyncio.sleep(PAIRING_RECHECK_S)

    # -- checks (called by the poller) ------------------------------------

    async def _check(self, check: Check) -> Result:
        try:
            if check is Check.STATUS:
                outcome = await self._api.status(self._applied_revision)
                self._note_status(outcome)
                if not isinstance(outcome, StatusChanged):
                    return Result.UNCHANGED
                if outcome.reload:
                    self._reload_pending = True
            return await self._fetch()
        except RejectedError as exc:
            await self._on_rejected(exc)
            return Result.REJECTED

    def _note_status(self, outcome: StatusOutcome) -> None:
        self._status.update(last_poll_at=utc_now_iso())
        if (
            isinstance(outcome, StatusUnchanged | StatusChanged)
            and outcome.revision is not None
        ):
            self._server_revision = outcome.revision
        applied = self._applied_revision
        server = self._server_revision
        if server is not None and applied is not None and server < applied:
            if self._lower_since is None:
                self._lower_since = time.monotonic()
                log.warning("server_revision_lower", server=server, shown=applied)
        else:
            self._lower_since = None

    async def _fetch(self) -> Result:
        self._last_fetch_at = time.monotonic()
        # A reload asks for the full snapshot, so a 304 must not short-cut it.
        etag = self._cached.etag if self._cached and not self._reload_pending else None
        outcome = await self._api.snapshot(etag)
        self._status.update(last_poll_at=utc_now_iso())
        if isinstance(outcome, SnapshotNotModified):
            # Our ETag still matches, yet the school moved on: the server is
            # serving an old body while it rebuilds.
            applied = self._applied_revision
            newer = outcome.revision
            if newer is not None and applied is not None and newer > applied:
                raise NotReadyError(
                    f"server is at revision {newer} but still serves the body "
                    f"of {applied}",
                    retry_after_s=NOT_MODIFIED_RETRY_S,
                )
            self._push_started_at = None
            return Result.UNCHANGED
        if isinstance(outcome, SnapshotPlaceholder):
            log.debug("snapshot_placeholder", kind=outcome.kind, cache=outcome.cache)
            raise NotReadyError(
                f"server sent a {outcome.kind} placeholder",
                retry_after_s=outcome.retry_after_s,
            )
        if outcome.revision is not None:
            self._server_revision = max(self._server_revision or 0, outcome.revision)
        if not self._should_apply(outcome):
            return Result.UNCHANGED
        await self._apply(outcome)
        return Result.CHANGED

    def _should_apply(self, fresh: SnapshotFresh) -> bool:
        """Real data no older than what is shown; raises to retry a stale body."""
        applied = self._applied_revision
        if fresh.revision is None or applied is None or fresh.revision > applied:
            return True
        if fresh.revision == applied:
            if fresh.is_stale and (self._server_revision or 0) > applied:
                raise NotReadyError("server sent a stale body while rebuilding")
            return not fresh.is_stale
        # Lower than shown: a lagging replica, unless status agrees for long.
        confirmed = (
            self._lower_since is not None
            and time.monotonic() - self._lower_since >= RESET_CONFIRM_S
        )
        if confirmed and not fresh.is_stale:
            log.warning("revision_reset_accepted", revision=fresh.revision, was=applied)
            return True
        raise NotReadyError(
            f"server sent revision {fresh.revision}, older than {applied} on screen",
            retry_after_s=OLDER_RETRY_S,
        )

    async def _apply(self, fresh: SnapshotFresh) -> None:
        previous_ws = self._ws_enabled
        try:
            self._cached = await asyncio.to_thread(
                self._store.save,
                fresh.body,
                etag=fresh.etag,
                revision=fresh.revision,
                owner=self._owner,
            )
        except OSError as exc:
            log.error("cache_write_failed", error=str(exc))
            self._cached = Cached(
                fresh.body, fresh.etag, fresh.revision, datetime.now(UTC), self._owner
            )
        self._notice = None
        await self._render()

        latency_ms = None
        source = "poll"
        if self._push_started_at is not None:
            source = "push"
            latency_ms = round((time.monotonic() - self._push_started_at) * 1000)
            self._push_started_at = None
        log.info(
            "snapshot_applied",
            revision=fresh.revision,
            source=source,
            latency_ms=latency_ms,
            cache=fresh.cache,
        )
        now = utc_now_iso()
        self._status.update(
            revision=fresh.revision,
            etag=fresh.etag,
            last_change_at=now,
            notice=None,
            last_error=None,
        )
        if self._ws_enabled != previous_ws:
            log.info("push_setting_changed", ws_enabled=self._ws_enabled)
            if self._ws_enabled:
                self._push_armed = True
            self._push_changed.set()
        if self._reload_pending:
            self._reload_pending = False
            log.info("screen_reload")
            await self._guard(self._renderer.reload())
        self._boundaries_changed.set()

    async def _on_rejected(self, exc: RejectedError) -> None:
        kind, text = {
            Rejection.SCREEN_BOUND: (
                NoticeKind.SCREEN_BOUND,
                "This screen is bound to another device. Ask the administrator "
                "to unbind it, quoting this device key.",
            ),
            Rejection.TOKEN_INVALID: (
                NoticeKind.TOKEN_REJECTED,
                "The server does not accept this screen's token. Pair the "
                "screen again with a valid token.",
            ),
            Rejection.DEVICE_REQUIRED: (
                NoticeKind.TOKEN_REJECTED,
                "The server did not receive this screen's device key.",
            ),
        }[exc.code]
        if self._rejection is not exc.code:
            log.warning("screen_rejected", reason=exc.code.value, message=str(exc))
        self._rejection = exc.code
        # The screen first, then status.json: status must not run ahead of it.
        await self._notice_screen(kind, text, hint=key_hint(self._device_key))
        self._status.update(
            last_error={
                "code": exc.code.value,
                "message": str(exc),
                "at": utc_now_iso(),
            },
        )

    # -- poller callbacks ---------------------------------------------------

    def _on_poll_failure(self, error: BaseException, retry_in_s: float) -> None:
        if isinstance(error, NotReadyError):
            # Not an outage: the server answered, so the offline badge goes and
            # push may try again; a technician should still see why it lags.
            self._server_answered()
            first = not self._not_ready
            self._not_ready = True
            (log.info if first else log.debug)(
                "snapshot_not_ready", error=describe(error), retry_in_s=retry_in_s
            )
            self._status.update(
                last_error={
                    "code": "not_ready",
                    "message": describe(error),
                    "at": utc_now_iso(),
                }
            )
            return
        message = describe(error)
        self._status.update(
            last_error={"code": "offline", "message": message, "at": utc_now_iso()}
        )
        if self._offline_since is not None:
            # A line now and then, so a technician reading the journal sees
            # the agent is still trying; every failure would flood it.
            quiet_s = time.monotonic() - self._offline_reminded_at
            if quiet_s >= OFFLINE_REMIND_S:
                self._offline_reminded_at = time.monotonic()
                offline_s = (datetime.now(UTC) - self._offline_since).total_seconds()
                log.warning(
                    "server_still_unreachable",
                    error=message,
                    offline_s=round(offline_s),
                    retry_in_s=round(retry_in_s, 1),
                )
            else:
                log.debug("server_still_unreachable", error=message)
            return
        self._offline_since = datetime.now(UTC)
        self._offline_reminded_at = time.monotonic()
        log.warning(
            "server_unreachable", error=message, retry_in_s=round(retry_in_s, 1)
        )
        self._status.update(
            offline_since=self._offline_since.isoformat(timespec="seconds")
        )
        self._spawn(self._render(), "render-offline")

    def _on_poll_success(self) -> None:
        """A check went through: clear outage and rejection, re-arm push."""
        if self._not_ready:
            self._not_ready = False
            log.info("snapshot_ready")
            self._status.update(last_error=None)
        cleared = False
        if self._rejection is not None:
            log.info("screen_accepted", was=self._rejection.value)
            self._rejection = None
            self._status.update(last_error=None)
            cleared = True
        if self._notice is not None:
            self._notice = None
            self._status.update(notice=None)
            cleared = True
        self._server_answered(cleared)

    def _server_answered(self, cleared: bool = False) -> None:
        """End an outage, re-render if anything on screen was cleared, and give
        push another chance: the answer is evidence the network is back."""
        recovered = cleared
        if self._offline_since is not None:
            seconds = (datetime.now(UTC) - self._offline_since).total_seconds()
            log.info("server_recovered", offline_s=round(seconds))
            self._offline_since = None
            self._status.update(offline_since=None, last_error=None)
            recovered = True
        if recovered:
            self._spawn(self._render(), "render-recovered")
        self._maybe_rearm_push(recovered)

    def _maybe_rearm_push(self, recovered: bool) -> None:
        """Try push again after evidence of recovery, or after a quiet while.

        A listener that gave up or was refused waits for a poll that succeeds
        after a failure; a refused one is also retried every PUSH_REARM_S while
        HTTP works, since a refusal can be the server's passing state.
        """
        listener = self._listener
        if listener is None or listener.state not in (
            PushState.GIVEN_UP,
            PushState.REJECTED,
        ):
            return
        waited = time.monotonic() - self._push_stopped_at
        if recovered or (
            listener.state is PushState.REJECTED and waited >= PUSH_REARM_S
        ):
            log.info("push_rearmed", after=listener.state.value)
            self._push_armed = True
            self._push_changed.set()

    def _on_schedule(self, interval_s: float, due_monotonic: float) -> None:
        due_wall = time.time() + (due_monotonic - time.monotonic())
        self._status.update(
            poll_interval_s=round(interval_s, 1),
            next_poll_at=datetime.fromtimestamp(due_wall, UTC).isoformat(
                timespec="seconds"
            ),
        )

    def _cadence(self) -> Cadence:
        if self._meta().get("is_active_window") is False:
            return Cadence.IDLE
        if self._listener is not None and self._listener.healthy():
            return Cadence.RELAXED
        return Cadence.FAST

    # -- push -------------------------------------------------------------

    def _push_wanted(self) -> bool:
        return self._settings.push_enabled and self._ws_enabled and self._push_armed

    async def _supervise_push(self) -> None:
        """Run the listener while push is wanted; stop it when it is not."""
        assert self._pairing is not None
        url, origin = push_url(
            self._pairing.server_url, self._pairing.token, self._device_key
        )
        while True:
            self._push_changed.clear()
            if not self._push_wanted():
                # A listener that gave up keeps that state on show until re-armed.
                if not (self._settings.push_enabled and self._ws_enabled):
                    self._status.update(push=PushState.DISABLED.value)
                await self._push_changed.wait()
                continue
            listener = PushListener(
                url,
                origin,
                self._on_push,
                on_state=self._on_push_state,
                ping_interval_s=self._settings.push_ping_interval_s,
                dead_after_s=self._settings.push_dead_after_s,
                backoff_max_s=self._settings.push_backoff_max_s,
            )
            self._listener = listener
            task = asyncio.create_task(listener.run(), name="push-listener")
            changed = asyncio.create_task(self._wait_unwanted(), name="push-watch")
            done, _ = await asyncio.wait(
                {task, changed}, return_when=asyncio.FIRST_COMPLETED
            )
            for pending in (task, changed):
                if pending not in done:
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending
            if task in done:
                # Given up or rejected: wait for evidence before trying again.
                self._push_armed = False
                self._push_stopped_at = time.monotonic()
            else:
                log.info("push_stopped", reason="disabled by the server")
                listener.state = PushState.DISABLED
                self._status.update(push=PushState.DISABLED.value)
            self._poller_reschedule()

    async def _wait_unwanted(self) -> None:
        while True:
            await self._push_changed.wait()
            self._push_changed.clear()
            if not self._push_wanted():
                return

    def _on_push_state(self, state: PushState, failures: int) -> None:
        self._status.update(push=state.value, push_failures=failures)
        self._notifier.status(self._status_line())
        self._poller_reschedule()

    def _on_push(self, event: PushEvent) -> None:
        assert self._poller is not None
        if event.kind is EventKind.RELOAD:
            log.info("push_reload")
            self._reload_pending = True
            self._push_started_at = self._push_started_at or event.received_at
            self._poller.poke(Check.FETCH)
            return
        applied = self._applied_revision
        revision = event.revision
        if revision is not None and applied is not None and revision <= applied:
            log.debug("push_ignored", revision=revision, shown=applied)
            return
        log.debug("push_refresh", revision=event.revision)
        self._push_started_at = self._push_started_at or event.received_at
        # Fetch at once unless a fetch just ran; a burst merges into one fetch.
        since_fetch = time.monotonic() - self._last_fetch_at
        self._poller.poke(Check.FETCH, max(0.0, PUSH_COALESCE_S - since_fetch))
        self._poller.poke(Check.STATUS, PUSH_COALESCE_S + FOLLOW_UP_S)

    def _poller_reschedule(self) -> None:
        if self._poller is not None:
            self._poller.reschedule()

    # -- housekeeping -------------------------------------------------------

    async def _housekeeping(self) -> None:
        """Watchdog pings, push health changes, systemd status; every few seconds."""
        watchdog_s = self._notifier.watchdog_interval_s()
        pause = min(HOUSEKEEPING_S, watchdog_s) if watchdog_s else HOUSEKEEPING_S
        while True:
            healthy = self._listener is not None and self._listener.healthy()
            if healthy != self._push_was_healthy:
                self._push_was_healthy = healthy
                self._poller_reschedule()
            # The page runs on the offset it was last given; an NTP step or a
            # first server reading after an offline boot needs a new one. A
            # render that failed (a full disk, a busy web view) is tried again.
            drift = abs(self._clock.offset_ms - self._rendered_offset_ms)
            if drift > CLOCK_RERENDER_MS or self._render_failed:
                await self._render()
            self._notifier.watchdog()
            self._notifier.status(self._status_line())
            await asyncio.sleep(pause)

    async def _day_timer(self) -> None:
        """Refetch at the day's boundaries, which change no revision.

        The server does not bump the revision when the active window opens or
        closes or when the date changes, so a status check would answer 304:
        at ``next_wake_at``, at the window's end and at school-local midnight
        the agent fetches the snapshot itself (plus a per-device jitter).
        """
        while True:
            self._boundaries_changed.clear()
            due = self._next_boundary()
            if due is None:
                await self._boundaries_changed.wait()
                continue
            delay = due - self._clock.now_ms() / 1000.0
            try:
                async with asyncio.timeout(max(0.0, delay)):
                    await self._boundaries_changed.wait()
                continue
            except TimeoutError:
                pass
            log.info("day_boundary", at=datetime.fromtimestamp(due, UTC).isoformat())
            # The server may serve its cached body for a few minutes after the
            # boundary, so ask again until that cache has surely turned over.
            for pause in BOUNDARY_REFETCH_S:
                await asyncio.sleep(pause)
                assert self._poller is not None
                self._poller.poke(Check.FETCH)

    def _next_boundary(self) -> float | None:
        """The next boundary in server epoch seconds, jitter included, or None."""
        if self._cached is None:
            return None
        meta = self._meta()
        now_s = self._clock.now_ms() / 1000.0
        candidates = []
        window = meta.get("active_window")
        for value in (
            meta.get("next_wake_at"),
            window.get("end") if isinstance(window, dict) else None,
            window.get("start") if isinstance(window, dict) else None,
        ):
            stamp = _epoch(value)
            if stamp is not None:
                candidates.append(stamp)
        offset = _utc_offset(self._cached.snapshot.get("now"))
        if offset is not None:
            local = datetime.fromtimestamp(now_s, UTC) + offset
            midnight = (local + timedelta(days=1)).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            candidates.append((midnight - offset).timestamp())
        digest = hashlib.sha256(self._device_key.encode()).digest()
        jitter = digest[4] / 255 * WAKE_JITTER_MAX_S
        future = [stamp + jitter for stamp in candidates if stamp + jitter > now_s]
        return min(future) if future else None

    # -- rendering ----------------------------------------------------------

    async def _render(self) -> None:
        """Show the cached snapshot, unless a full-screen notice holds the screen."""
        if self._cached is None:
            return
        if self._notice is not None and self._notice is not NoticeKind.WAITING:
            return
        self._rendered_offset_ms = self._clock.offset_ms
        try:
            view = build_view(
                self._cached.snapshot,
                server_offset_ms=self._clock.offset_ms,
                offline_since=self._offline_since,
                # Saved by this device's clock; shown beside the page's clock,
                # which runs on the server's.
                saved_at=self._cached.saved_at
                + timedelta(milliseconds=self._clock.offset_ms),
                digits=self._settings.digits,
            )
        except Exception:
            log.exception("view_build_failed", revision=self._cached.revision)
            return
        self._render_failed = not await self._guard(self._renderer.show(view))
        if not self._render_failed:
            self._status.update(
                rendered_revision=self._cached.revision, rendered_at=utc_now_iso()
            )

    async def _notice_screen(
        self, kind: NoticeKind, text: str, *, hint: str | None = None
    ) -> None:
        self._notice = kind
        if await self._guard(self._renderer.show_notice(kind, text, hint=hint)):
            self._status.update(notice=kind.value, rendered_at=utc_now_iso())

    async def _guard(self, call: Any) -> bool:
        """Run a renderer call; a broken screen is logged, never fatal here."""
        try:
            await call
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("render_failed")
            return False
        return True

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _meta(self) -> dict[str, Any]:
        if self._cached is None:
            return {}
        meta = self._cached.snapshot.get("meta")
        return meta if isinstance(meta, dict) else {}

    def _status_line(self) -> str:
        """One line for ``systemctl status``."""
        if self._notice is not None:
            return f"showing notice: {self._notice.value}"
        revision = self._applied_revision
        shown = f"showing revision {revision}" if revision is not None else "no data"
        push = self._listener.state.value if self._listener else "disabled"
        offline = ", offline" if self._offline_since else ""
        return f"{shown}, push {push}{offline}"


def _epoch(value: object) -> float | None:
    """Epoch seconds of an ISO timestamp with an offset, else None."""
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp.timestamp() if stamp.tzinfo is not None else None


def _utc_offset(value: object) -> timedelta | None:
    """The school's UTC offset, read from the snapshot's ``now``."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).utcoffset()
    except ValueError:
        return None
