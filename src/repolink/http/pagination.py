"""Bitbucket-style pages: ``values``, ``pagelen``, ``size``, ``page``, ``next`` and ``previous``.

``next`` and ``previous`` are absolute URLs (this request's, with another page number):
Bitbucket clients follow them as they are and never build a page's URL themselves. The last
page has no ``next``, the first no ``previous``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel

DEFAULT_PAGELEN = 10
MAX_PAGELEN = 100
# Page numbers are bounded like ids: nothing larger reaches the arithmetic below.
MAX_PAGE = 2**53

S = TypeVar("S")
T = TypeVar("T")

PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PageLength = Annotated[int, Query(ge=1, le=MAX_PAGELEN)]


class Page(BaseModel, Generic[T]):
    """Bitbucket's paginated list."""

    values: list[T]
    pagelen: int
    size: int
    page: int
    next: str | None = None
    previous: str | None = None


def paginate(request: Request, items: Sequence[T], page: int, pagelen: int) -> Page[T]:
    """One page of ``items``."""
    return paginate_converted(request, items, page, pagelen, _same)


def paginate_converted(
    request: Request, items: Sequence[S], page: int, pagelen: int, convert: Callable[[S], T]
) -> Page[T]:
    """One page of ``items``, only the items shown passed through ``convert`` (when turning
    a record into an answer costs more than a copy)."""
    start = (page - 1) * pagelen
    has_next = start + pagelen < len(items)
    # A page past the end still points back, to the last page that has items.
    previous = min(page - 1, max(1, -(-len(items) // pagelen)))
    return Page[T](
        values=[convert(item) for item in items[start : start + pagelen]],
        pagelen=pagelen,
        size=len(items),
        page=page,
        next=_page_url(request, page + 1) if has_next else None,
        previous=_page_url(request, previous) if page > 1 else None,
    )


def _page_url(request: Request, page: int) -> str:
    return str(request.url.include_query_params(page=page))


def _same(item: T) -> T:
    return item
