"""``Ctx``: the app's clients and the signed-in user, handed to every action.

Its own module so that every route package (review pages, API, admin, evidence) imports
it from below rather than from another route module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch
from fastapi import Request

from harmwatch.settings import Settings
from review_ui import audit
from review_ui.security import Principal, SessionStore


@dataclass
class Ctx:
    """Everything an action needs about the app and the signed-in user."""

    client: Elasticsearch
    settings: Settings
    sessions: SessionStore
    principal: Principal

    @classmethod
    def of(cls, request: Request) -> Ctx:
        state = request.app.state
        return cls(state.es, state.settings, state.sessions, request.state.principal)

    @property
    def username(self) -> str:
        return self.principal.user.username

    @property
    def role(self) -> str:
        return self.principal.user.role

    def record(self, action: str, target: str | None = None, **details: Any) -> None:
        audit.record(self.client, self.settings, self.principal.actor, action, target, details)
