"""The pages' templates (``web/templates``, Jinja2) and what every one of them is given.

:class:`Renderer` is built once per app, never at import time. Every page gets, besides what
its route passes: ``principal`` (``None`` before sign-in), ``csrf_token`` (for
``macros.csrf_field()``), ``notice`` (the line the previous action left, shown once), the
``paths`` module for addresses, and the filters ``ago`` (relative time against the
application's clock) and ``exact`` (the UTC time). Autoescaping is on; undefined names fail
loudly (a template that names a variable nobody passed is a bug, not an empty string).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from repolink.store.types import Clock
from repolink.web import paths, timefmt
from repolink.web.cookies import NOTICE, CookieJar

PRODUCT = "repolink"


def make_environment(clock: Clock) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("repolink.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["ago"] = lambda moment: _ago(moment, clock)
    environment.filters["exact"] = timefmt.exact
    environment.globals["paths"] = paths
    environment.globals["product"] = PRODUCT
    return environment


def _ago(moment: datetime | None, clock: Clock) -> str:
    return "never" if moment is None else timefmt.relative(moment, clock())


class Renderer:
    def __init__(self, environment: jinja2.Environment, cookies: CookieJar) -> None:
        self._environment = environment
        self._cookies = cookies

    def page(
        self,
        request: Request,
        template: str,
        *,
        status: int = 200,
        title: str,
        **context: Any,
    ) -> HTMLResponse:
        """``template`` rendered for ``request``; the notice cookie, once shown, is cleared."""
        notice = self._cookies.read_notice(request)
        html = self._environment.get_template(template).render(
            **self.base_context(request), title=title, notice=notice, **context
        )
        response = HTMLResponse(html, status_code=status)
        if notice is not None or self._cookies.read(request, NOTICE) is not None:
            self._cookies.clear(response, NOTICE)
        return response

    def error(
        self, request: Request, status: int, code: str, message: str, hint: str
    ) -> HTMLResponse:
        """The error page: the error's code, message and fix, and the way back."""
        return self.page(
            request,
            "error.html",
            status=status,
            title="Not found" if status == 404 else "Something is wrong",
            status_code=status,
            error={"code": code, "message": message, "hint": hint},
        )

    def base_context(self, request: Request) -> Mapping[str, Any]:
        state = request.state
        return {
            "request": request,
            "principal": getattr(state, "principal", None),
            "csrf_token": getattr(state, "csrf_token", ""),
            "current_path": request.url.path,
        }


ErrorPage = Callable[[Request, int, str, str, str], HTMLResponse]
