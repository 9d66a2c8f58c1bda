"""Concurrent creations on one SQLite store: each answers a record or a clear conflict.

Ten threads that create repositories (or add account keys) in a workspace that does not
exist yet all try to insert its row; the losers used to fail with an IntegrityError (an HTTP
500). The workspace row is insert-or-get; only a real duplicate is refused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from repolink.errors import Conflict, DuplicateKey
from repolink.host.service import HostService
from support.hostkit import KeyPair

pytestmark = pytest.mark.databases

PARALLEL = 10
T = TypeVar("T")


def run_together(calls: list[Callable[[], T]]) -> list[T | BaseException]:
    """Run every call at once (a barrier releases them together); results or exceptions."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T | BaseException:
        barrier.wait()
        try:
            return call()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_parallel_repositories_in_a_new_workspace_are_all_created(
    host_service: HostService,
) -> None:
    results = run_together(
        [lambda i=i: host_service.create_repository("fresh", f"repo-{i}") for i in range(PARALLEL)]
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert len(host_service.list_repositories("fresh")) == PARALLEL
    assert host_service.list_workspaces() == ["fresh"]


def test_parallel_creations_of_one_repository_give_one_record_and_conflicts(
    host_service: HostService,
) -> None:
    results = run_together(
        [lambda: host_service.create_repository("fresh", "same") for _ in range(PARALLEL)]
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(created) == 1
    assert all(isinstance(r, Conflict) and r.code == "repository_exists" for r in refused), refused
    assert [r.slug for r in host_service.list_repositories("fresh")] == ["same"]


def test_parallel_account_keys_in_a_new_workspace_are_all_added(
    host_service: HostService, make_key: Callable[[str], KeyPair]
) -> None:
    keys = [make_key(f"person-{i}").public_line for i in range(PARALLEL)]
    results = run_together(
        [lambda key=key: host_service.add_account_key("fresh", key, label="laptop") for key in keys]
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert len(host_service.list_account_keys("fresh")) == PARALLEL


def test_parallel_additions_of_one_account_key_give_one_record_and_duplicates(
    host_service: HostService, make_key: Callable[[str], KeyPair]
) -> None:
    key = make_key("person").public_line
    results = run_together(
        [lambda: host_service.add_account_key("fresh", key, label="laptop")] * PARALLEL
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(results) - len(refused) == 1
    assert all(
        isinstance(r, DuplicateKey) and r.code == "account_key_duplicate" for r in refused
    ), refused
