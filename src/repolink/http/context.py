"""What a router of the service app is built from, besides the application: its own module,
so the routers and :mod:`repolink.http.service_app`, which lists them, import it and not each
other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from repolink.app import Repolink


@dataclass(frozen=True)
class ServiceContext:
    """What a router builder may need of the running server besides the application."""

    ssh_url_base: str | None = None
    """How clients reach the built-in SSH host (``ssh://git@host:2222``), when it runs."""


RouterBuilder = Callable[["Repolink", ServiceContext], APIRouter]
