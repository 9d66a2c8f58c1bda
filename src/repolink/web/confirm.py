"""The one confirmation step of every removal, none needing a script: the removal's address,
opened with GET, is a page that asks — the question, its subject (a fingerprint, a prefix) in a
monospace face, what follows — whose button POSTs to that address, beside a Cancel link back.

A project's pages ask inside the project's layout (:func:`confirm_project_page`, opened at the
role the action needs); a site page (Known hosts) in the plain one (:func:`confirm_page`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from repolink.auth.principal import Role
from repolink.errors import RepolinkError
from repolink.web.kit import PageKit
from repolink.web.projects import ProjectPage, open_project

_T = TypeVar("_T")


def asked_about(items: Iterable[_T], matches: Callable[[_T], bool], missing: RepolinkError) -> _T:
    """The first of ``items`` that ``matches``: what a confirmation page asks about, found in
    the list its page shows; none is ``missing`` (a 404: gone meanwhile, or never there)."""
    for item in items:
        if matches(item):
            return item
    raise missing


@dataclass(frozen=True)
class Question:
    question: str
    action: str
    """Where the button posts: the removal itself."""
    button: str
    subject: str = ""
    then: str = ""
    """What follows from it, a sentence."""
    fields: tuple[tuple[str, str], ...] = ()
    """Hidden fields the form posts with the button (name, value)."""


async def confirm_project_page(
    kit: PageKit,
    request: Request,
    slug: str,
    page: ProjectPage,
    asked: Question,
    *,
    needed: Role = Role.ADMIN,
) -> Response:
    """``asked`` on a page of the project ``slug`` for who has at least ``needed`` (else its
    404 or 403 page); Cancel goes back to ``page``."""
    opened = await open_project(kit, request, slug, needed)
    return kit.page(
        request,
        "projects/confirm.html",
        title=f"Confirm · {page.label} · {opened.project.name}",
        asked=asked,
        back=page.href(opened.project.slug),
        **opened.layout,
    )


def confirm_page(
    kit: PageKit, request: Request, asked: Question, *, heading: str, back: str
) -> Response:
    """``asked`` on a site page titled ``heading``; Cancel goes back to ``back``."""
    return kit.page(
        request,
        "confirm.html",
        title=f"Confirm · {heading}",
        heading=heading,
        asked=asked,
        back=back,
    )
