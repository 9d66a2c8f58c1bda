"""PrincipalCache: an entry answers for a moment and never past its token's expiry; an
invalidation forgets every entry and every lookup still running."""

from __future__ import annotations

from datetime import timedelta

from repolink.auth.principal import Principal
from repolink.auth.principal_cache import MAX_ENTRIES, PrincipalCache
from repolink.store.types import utcnow

JANE = Principal(user_id=1, username="jane", site_admin=False)


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_answers_only_while_fresh() -> None:
    ticks = Ticks()
    cache = PrincipalCache(fresh_for=1.0, monotonic=ticks)
    now = utcnow()
    assert cache.get("h", now) is None
    cache.put("h", JANE, None, cache.epoch)
    assert cache.get("h", now) == JANE
    ticks.now += 0.99
    assert cache.get("h", now) == JANE
    ticks.now += 0.01
    assert cache.get("h", now) is None


def test_an_entry_never_outlives_its_token() -> None:
    cache = PrincipalCache(fresh_for=60.0, monotonic=Ticks())
    now = utcnow()
    cache.put("h", JANE, now + timedelta(seconds=5), cache.epoch)
    assert cache.get("h", now + timedelta(seconds=4)) == JANE
    assert cache.get("h", now + timedelta(seconds=5)) is None


def test_invalidate_forgets_entries_and_lookups_that_began_before_it() -> None:
    cache = PrincipalCache(monotonic=Ticks())
    now = utcnow()
    cache.put("h", JANE, None, cache.epoch)
    began = cache.epoch  # a lookup starts, reads the token as active …
    cache.invalidate()  # … the token is revoked and committed meanwhile …
    cache.put("h", JANE, None, began)  # … and the lookup's answer arrives late
    assert cache.get("h", now) is None
    cache.put("h", JANE, None, cache.epoch)  # a lookup begun after it is kept
    assert cache.get("h", now) == JANE


def test_the_cache_is_bounded() -> None:
    cache = PrincipalCache(monotonic=Ticks())
    for n in range(MAX_ENTRIES + 1):
        cache.put(f"h{n}", JANE, None, cache.epoch)
    assert cache.get(f"h{MAX_ENTRIES}", utcnow()) == JANE
    assert cache.get("h0", utcnow()) is None
