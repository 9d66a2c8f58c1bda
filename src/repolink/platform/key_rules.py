"""Key rules: URL prefix → key, so one key serves several repositories (architecture.md#words).

A rule points a URL prefix at the project's deploy key or at one of its additional keys
(:mod:`repolink.platform.additional_keys`). :class:`KeyRuleService` adds, lists and removes
rules, one transaction each; :func:`choose_key` picks the key for a URL, such as a submodule's
(in the caller's transaction: a checkout chooses the keys of all its submodules in one):

1. the rule with the **longest** matching prefix;
2. else an additional key for the URL's host — one for that very port before one for any
   port of the host — then an additional key with a blank host name (any host); the oldest
   first among equals;
3. else the project's preferred checkout key: its newest user key, else the deploy key
   (:mod:`repolink.platform.checkout_keys`) — the key the project's own fetches use. A rule
   pointing at ``deploy`` means the deploy key itself.

Matching, precisely. A prefix is written like an SSH URL (``ssh://git@host:2222/team/``,
``git@host:team/app.git``, or a host alone: ``ssh://git@host/``, ``git@host:``) and is parsed by
:mod:`repolink.urls` like any URL, then reduced to the same canonical form as the URLs it is
compared with: host in lower case, the default port dropped, the path split into segments with
empty and ``.`` segments and a final ``.git`` dropped. A prefix matches a URL when

- host and port are equal;
- the prefix names no user, or the same user as the URL;
- its path segments are the first segments of the URL's path, each equal as a whole (paths
  are case-sensitive, as git servers' are).

So ``ssh://git@host/team`` (or ``…/team/``) matches ``team/app.git``, ``team/sub/lib.git`` and
the repository ``team.git`` itself, but never ``teamwork/app.git``; ``git@host:team/app.git``
matches ``ssh://git@host/team/app`` and ``ssh://git@host:22/team/app.git/`` alike. The longest
prefix is the one with the most path segments; at equal length one naming the user wins. Two
rules of one project cannot have the same canonical prefix.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from repolink.errors import Conflict, NotFound, URLError
from repolink.platform.additional_keys import (
    additional_key_rows,
    deploy_key_fingerprint,
    find_additional_key,
    hostname_text,
)
from repolink.platform.connections import get_connection
from repolink.platform.projects import get_project
from repolink.store import Store
from repolink.store.key_records import get_key_record
from repolink.store.models.keys import KeyRecord
from repolink.store.models.platform import Project, new_id
from repolink.store.models.platform_keys import MAX_PREFIX_LENGTH, AdditionalKey, KeyRule
from repolink.store.models.user_keys import newest_user_key
from repolink.store.types import Clock, utcnow
from repolink.urls import SSHURL, parse_ssh_url

log = logging.getLogger(__name__)

DEPLOY_KEY = "deploy"

SOURCE_KEY_RULE = "key_rule"
SOURCE_ADDITIONAL_KEY = "additional_key"
SOURCE_DEPLOY_KEY = "deploy_key"
SOURCE_USER_KEY = "user_key"

# Stands in for the path of a host-only prefix so that repolink.urls, which wants a
# repository path, parses its authority; it is dropped again at once.
_PLACEHOLDER = "_"
# A rule's id, as new_id() makes it; no URL prefix has this shape.
_RULE_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class URLPrefix:
    """A canonical URL prefix: who, where, and the leading path segments."""

    user: str | None
    host: str
    port: int | None
    segments: tuple[str, ...]

    @property
    def text(self) -> str:
        """``ssh://[user@]host[:port]/seg/…`` — ``ssh://host/`` for a host alone."""
        authority = f"[{self.host}]" if ":" in self.host else self.host
        if self.user is not None:
            authority = f"{self.user}@{authority}"
        if self.port is not None:
            authority = f"{authority}:{self.port}"
        return f"ssh://{authority}/" + "/".join(self.segments)

    @property
    def length(self) -> tuple[int, int]:
        """What "longest" compares: path segments, then whether a user is named."""
        return len(self.segments), int(self.user is not None)

    def matches(self, url: SSHURL) -> bool:
        if (url.host, url.port) != (self.host, self.port):
            return False
        if self.user is not None and url.user != self.user:
            return False
        segments = url_segments(url)
        return segments[: len(self.segments)] == self.segments


@dataclass(frozen=True)
class KeyRuleInfo:
    id: str
    project: str
    prefix: str
    additional_key_id: str | None
    key_fingerprint_sha256: str | None
    created_at: datetime

    @property
    def key(self) -> str:
        """``deploy``, or the additional key's SHA256 fingerprint."""
        if self.additional_key_id is None:
            return DEPLOY_KEY
        return self.key_fingerprint_sha256 or ""

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "project": self.project,
            "prefix": self.prefix,
            "key": self.key,
            "key_fingerprint_sha256": self.key_fingerprint_sha256,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class ChosenKey:
    """The key :func:`choose_key` picked for a URL, and why."""

    key_record_id: str
    fingerprint_sha256: str
    source: str
    rule_prefix: str | None = None
    additional_key_id: str | None = None
    hostname: str | None = None

    def describe(self) -> str:
        """``additional key SHA256:… (key rule ssh://host/team)`` and the like."""
        kind = "the deploy key" if self.additional_key_id is None else "additional key"
        if self.source == SOURCE_USER_KEY:
            return f"the user key {self.fingerprint_sha256} (preferred over the deploy key)"
        if self.source == SOURCE_KEY_RULE:
            why = f"key rule {self.rule_prefix}"
        elif self.source == SOURCE_ADDITIONAL_KEY:
            why = f"for host {self.hostname}" if self.hostname else "for any host"
        else:
            why = "no key rule or additional key matches"
        return f"{kind} {self.fingerprint_sha256} ({why})"

    def as_dict(self) -> dict[str, object]:
        return {
            "key_record_id": self.key_record_id,
            "fingerprint_sha256": self.fingerprint_sha256,
            "source": self.source,
            "rule_prefix": self.rule_prefix,
            "additional_key_id": self.additional_key_id,
            "hostname": self.hostname,
            "description": self.describe(),
        }


# -- prefixes ---------------------------------------------------------------------------------


def parse_url_prefix(text: str) -> URLPrefix:
    """A prefix in canonical form, or ``key_rule_prefix_invalid`` with the URL's own reason."""
    stripped = text.strip()
    try:
        url = parse_ssh_url(stripped)
        placeholder = False
    except URLError as exc:
        if exc.code != "url_empty_path":
            raise _prefix_invalid(exc) from None
        joiner = "" if stripped.endswith(("/", ":")) else "/"
        try:
            url = parse_ssh_url(stripped + joiner + _PLACEHOLDER)
        except URLError as again:
            raise _prefix_invalid(again) from None
        placeholder = True
    segments = url_segments(url)
    if placeholder:
        segments = segments[:-1]
    prefix = URLPrefix(url.user, url.host, url.port, segments)
    if len(prefix.text) > MAX_PREFIX_LENGTH:
        raise URLError(
            "key_rule_prefix_invalid",
            f"the key rule prefix is longer than {MAX_PREFIX_LENGTH} characters",
            "give a shorter prefix, such as ssh://git@host/team/",
        )
    return prefix


def url_segments(url: SSHURL) -> tuple[str, ...]:
    """The canonical path of ``url`` as segments (see the module text)."""
    # canonical is "ssh://authority/path" and an authority holds no '/'.
    path = url.canonical.split("/", 3)[3]
    return tuple(segment for segment in path.split("/") if segment)


def longest_match(prefixes: Iterable[URLPrefix], url: SSHURL) -> URLPrefix | None:
    """The longest of ``prefixes`` that matches ``url``, or ``None``."""
    matching = [prefix for prefix in prefixes if prefix.matches(url)]
    return max(matching, key=lambda prefix: prefix.length, default=None)


# -- rules ------------------------------------------------------------------------------------


class KeyRuleService:
    """A project's key rules: add, list, remove, and which key a URL gets. Each method is one
    transaction."""

    def __init__(self, store: Store, *, clock: Clock = utcnow) -> None:
        self._store = store
        self._clock = clock

    def add_rule(self, project: str, prefix: str, key: str) -> KeyRuleInfo:
        """Point ``prefix`` at ``key``: ``deploy`` or an additional key's fingerprint."""
        canonical = parse_url_prefix(prefix).text
        with self._store.session() as session:
            row = get_project(session, project)
            additional_key_id: str | None = None
            fingerprint: str | None = None
            if key.strip().lower() == DEPLOY_KEY:
                fingerprint = deploy_key_fingerprint(session, row.id)
            else:
                found = find_additional_key(session, row.slug, key)
                additional_key_id, fingerprint = found.id, found.fingerprint_sha256
            existing = session.scalar(
                select(KeyRule.id).where(KeyRule.project_id == row.id, KeyRule.prefix == canonical)
            )
            if existing is not None:
                raise Conflict(
                    "key_rule_exists",
                    f"project {row.slug} has a key rule for {canonical} already",
                    "remove that key rule first",
                    context={"project": row.slug, "prefix": canonical},
                )
            rule = KeyRule(
                id=new_id(),
                project_id=row.id,
                prefix=canonical,
                additional_key_id=additional_key_id,
                created_at=self._clock(),
            )
            session.add(rule)
            session.flush()
            info = KeyRuleInfo(
                rule.id, row.slug, canonical, additional_key_id, fingerprint, rule.created_at
            )
        log.info(
            "project %s: key rule %s → %s",
            info.project,
            canonical,
            info.key_fingerprint_sha256 or DEPLOY_KEY,
        )
        return info

    def list_rules(self, project: str) -> list[KeyRuleInfo]:
        """The project's rules in the order they are tried: longest prefix first."""
        with self._store.session() as session:
            return _rules(session, get_project(session, project))

    def remove_rule(self, project: str, prefix: str) -> KeyRuleInfo:
        """Remove the rule for ``prefix`` (any spelling of the same canonical prefix), or the
        rule with this id (as the API's addresses name it)."""
        if _RULE_ID.fullmatch(prefix.strip()):
            return self._remove_by_id(project, prefix.strip())
        canonical = parse_url_prefix(prefix).text
        with self._store.session() as session:
            row = get_project(session, project)
            rule = next((rule for rule in _rules(session, row) if rule.prefix == canonical), None)
            if rule is None:
                raise NotFound(
                    "key_rule_not_found",
                    f"project {row.slug} has no key rule for {canonical}",
                    "list the project's key rules to see their prefixes",
                    context={"project": row.slug, "prefix": canonical},
                )
            session.execute(delete(KeyRule).where(KeyRule.id == rule.id))
        log.info("project %s: removed key rule %s", rule.project, canonical)
        return rule

    def _remove_by_id(self, project: str, rule_id: str) -> KeyRuleInfo:
        with self._store.session() as session:
            row = get_project(session, project)
            rule = next((rule for rule in _rules(session, row) if rule.id == rule_id), None)
            if rule is None:
                raise NotFound(
                    "key_rule_not_found",
                    f"project {row.slug} has no key rule with id {rule_id}",
                    "list the project's key rules to see their ids and prefixes",
                    context={"project": row.slug},
                )
            session.execute(delete(KeyRule).where(KeyRule.id == rule.id))
        log.info("project %s: removed key rule %s", rule.project, rule.prefix)
        return rule

    def choose_key(self, project: str, url: SSHURL) -> ChosenKey:
        """The key ``project`` uses for ``url``, and why (see the module text)."""
        with self._store.session() as session:
            return choose_key(session, project, url)


def _rules(session: Session, project: Project) -> list[KeyRuleInfo]:
    deploy = deploy_key_fingerprint(session, project.id)
    query = (
        select(KeyRule, KeyRecord.fingerprint_sha256)
        .outerjoin(AdditionalKey, AdditionalKey.id == KeyRule.additional_key_id)
        .outerjoin(KeyRecord, KeyRecord.id == AdditionalKey.key_record_id)
        .where(KeyRule.project_id == project.id)
    )
    rules = [
        KeyRuleInfo(
            rule.id,
            project.slug,
            rule.prefix,
            rule.additional_key_id,
            fingerprint if rule.additional_key_id is not None else deploy,
            rule.created_at,
        )
        for rule, fingerprint in session.execute(query)
    ]
    rules.sort(key=lambda rule: rule.prefix)
    rules.sort(key=lambda rule: parse_url_prefix(rule.prefix).length, reverse=True)
    return rules


# -- choosing a key ---------------------------------------------------------------------------


def choose_key(session: Session, project: str, url: SSHURL) -> ChosenKey:
    """The key to use for ``url`` (see the module text for the order), in the caller's
    transaction."""
    row = get_project(session, project)
    rules = list(session.scalars(select(KeyRule).where(KeyRule.project_id == row.id)))
    by_prefix = {parse_url_prefix(rule.prefix): rule for rule in rules}
    additional = additional_key_rows(session, row.id)
    best = longest_match(by_prefix, url)
    if best is not None:
        rule = by_prefix[best]
        if rule.additional_key_id is None:
            return _deploy_choice(session, row.slug, SOURCE_KEY_RULE, rule.prefix)
        # The foreign key guarantees the rule's key is among the project's additional keys.
        [(key, record)] = [item for item in additional if item[0].id == rule.additional_key_id]
        return _additional_choice(key, record, SOURCE_KEY_RULE, rule.prefix)
    candidates = _for_host(additional, url)
    if candidates:
        key, record = candidates[0]
        return _additional_choice(key, record, SOURCE_ADDITIONAL_KEY, None)
    user_key = newest_user_key(session, row.id)
    if user_key is not None:
        return ChosenKey(user_key.key_record_id, user_key.fingerprint_sha256, SOURCE_USER_KEY)
    return _deploy_choice(session, row.slug, SOURCE_DEPLOY_KEY, None)


def _for_host(
    rows: Sequence[tuple[AdditionalKey, KeyRecord]], url: SSHURL
) -> list[tuple[AdditionalKey, KeyRecord]]:
    """The additional keys that may serve ``url``'s host, best first: for this host and port,
    for any port of the host, for any host. ``rows`` come oldest first, and so do equals."""
    host, port = url.host_port
    this_port = [row for row in rows if row[0].host == host and row[0].port == port]
    any_port = [row for row in rows if row[0].host == host and row[0].port is None]
    any_host = [row for row in rows if not row[0].host]
    return this_port + any_port + any_host


def _additional_choice(
    key: AdditionalKey, record: KeyRecord, source: str, prefix: str | None
) -> ChosenKey:
    return ChosenKey(
        record.id,
        record.fingerprint_sha256,
        source,
        rule_prefix=prefix,
        additional_key_id=key.id,
        hostname=hostname_text(key.host, key.port),
    )


def _deploy_choice(session: Session, slug: str, source: str, prefix: str | None) -> ChosenKey:
    connection = get_connection(session, slug)
    record = get_key_record(session, connection.deploy_key_id)
    return ChosenKey(record.id, record.fingerprint_sha256, source, rule_prefix=prefix)


def _prefix_invalid(error: URLError) -> URLError:
    return URLError("key_rule_prefix_invalid", f"key rule prefix: {error.message}", error.hint)
