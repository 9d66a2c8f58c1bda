"""Bitbucket-style pages: ``values``, ``pagelen``, ``size``, ``page`` and a ``next`` link."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel

DEFAULT_PAGELEN = 10
MAX_PAGELEN = 100
# Page numbers are bounded like ids: nothing larger reaches the arithmetic below.
MAX_PAGE = 2**53

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


def paginate(request: Request, items: Sequence[T], page: int, pagelen: int) -> Page[T]:
    """One page of ``items``; ``next`` is this request's URL with the following page number."""
    start = (page - 1) * pagelen
    has_next = start + pagelen < len(items)
    return Page[T](
        values=list(items[start : start + pagelen]),
        pagelen=pagelen,
        size=len(items),
        page=page,
        next=str(request.url.include_query_params(page=page + 1)) if has_next else None,
    )
