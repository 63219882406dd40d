"""The renderer contract and the view model every renderer shows."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # The view model lives in agent.render.view, which imports NoticeKind from
    # here; importing it only for type checking keeps the modules acyclic.
    from agent.render.view import View


class NoticeKind(StrEnum):
    """Full-screen notices that replace the schedule (OFFLINE is only a badge)."""

    UNPAIRED = "unpaired"
    SCREEN_BOUND = "screen_bound"
    TOKEN_REJECTED = "token_rejected"
    OFFLINE = "offline"
    WAITING = "waiting"


class Renderer(Protocol):
    """What the coordinator needs from a screen.

    Calls are made from the agent's event loop, one at a time. ``show`` clears
    any full-screen notice. An OFFLINE notice is drawn as a small badge over the
    content that is already on screen; with nothing on screen it says that the
    agent is waiting for the server.
    """

    async def show(self, view: View) -> None: ...

    async def show_notice(
        self, kind: NoticeKind, text: str, *, hint: str | None = None
    ) -> None: ...

    async def reload(self) -> None: ...

    async def close(self) -> None: ...
