"""The editors of one pipeline, live (``/ws/pipelines/<team>/<project>/<pipeline>/``): each hears when the
draft changes and who else has the editor open.

Sends ``{"type": "hello", "revision": n}`` first (the page may be older), then ``{"type": "changed",
"revision", "by", "client", "label"}`` per change and ``{"type": "presence", "users": [...]}`` whenever the
others change. Presence needs no shared store: a socket announces itself to the pipeline's group ("join"),
the others answer ("here", to it) and say "leave" when they close, across processes through the layer.
"""

from __future__ import annotations

import uuid
from typing import Any

from channels.db import database_sync_to_async

from designer.editor import drafts
from designer.editor.models import Pipeline
from designer.runs import fanout
from designer.runs.consumers import FORBIDDEN, _GroupListener
from designer.runs.publish import publish, remember_server_loop
from designer.web import can


class PipelineEditorsConsumer(_GroupListener):
    """One open editor of a pipeline (viewers too: they see the changes)."""

    me: str
    username: str
    others: dict[str, str]

    async def connect(self) -> None:
        remember_server_loop()
        route = self.scope["url_route"]["kwargs"]
        found = await self._authorised(
            self.scope.get("user"), route["team"], route["project"], route["pipeline"]
        )
        if found is None:
            await self.close(code=FORBIDDEN)
            return
        pipeline_id, revision, self.username = found
        self.me, self.others = uuid.uuid4().hex, {}
        self.group = drafts.pipeline_group(pipeline_id)
        await fanout.local().subscribe(self.group, self)
        try:
            await self.accept()
            await self.send_json({"type": "hello", "revision": revision, "client": ""})
            await self._presence("join")
        except BaseException:  # disconnect() is not called when connect() fails
            await fanout.local().unsubscribe(self.group, self)
            raise

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self._presence("leave")
        await super().disconnect(code)

    async def _presence(self, event: str, to: str = "") -> None:
        message = {"type": drafts.PIPELINE_PRESENCE, "event": event, "id": self.me, "user": self.username}
        await publish([(self.group, {**message, "to": to})])

    async def deliver(self, message: dict[str, Any]) -> None:
        """A change of the draft, or someone opening, being on or leaving the editor."""
        if message.get("type") == drafts.PIPELINE_CHANGED:
            fields = ("revision", "by", "client", "label")
            await self.send_json({"type": "changed", **{k: message.get(k) for k in fields}})
            return
        sender = str(message.get("id", ""))
        if message.get("type") != drafts.PIPELINE_PRESENCE or sender == self.me:
            return
        event = message.get("event")
        if event == "leave":
            self.others.pop(sender, None)
        elif event == "join" or (event == "here" and message.get("to") == self.me):
            self.others[sender] = str(message.get("user", ""))
            if event == "join":
                await self._presence("here", to=sender)
        else:
            return
        await self.send_json({"type": "presence", "users": sorted(set(self.others.values()))})

    @database_sync_to_async
    def _authorised(self, user: Any, team: str, project: str, name: str) -> tuple[int, int, str] | None:
        pipeline = (
            Pipeline.objects.filter(project__team__slug=team, project__slug=project, name=name)
            .select_related("project__team")
            .first()
        )
        if pipeline is None or not can(user, pipeline.project.team, "viewer"):
            return None
        return pipeline.pk, pipeline.revision, user.get_username()
