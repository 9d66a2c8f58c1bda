"""Key rules: canonical prefixes, matching on path-segment boundaries, longest prefix wins,
and the order :func:`choose_key` falls back in (additional key for the host, then the deploy
key)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, update

from repolink.app import Repolink
from repolink.errors import RepolinkError
from repolink.keys import PrivateKey, generate_key
from repolink.platform.connections import create_connection, parse_connection_url
from repolink.platform.key_rules import (
    SOURCE_ADDITIONAL_KEY,
    SOURCE_DEPLOY_KEY,
    SOURCE_KEY_RULE,
    URLPrefix,
    choose_key,
    longest_match,
    parse_url_prefix,
)
from repolink.platform.projects import ProjectService
from repolink.settings import Settings
from repolink.store import Store
from repolink.store.key_records import get_key_record, store_private_key
from repolink.store.models.platform import KEY_GENERATED, Project, RepositoryConnection
from repolink.store.models.platform_keys import AdditionalKey, KeyRule
from repolink.urls import parse_ssh_url
from repolink.vault import Vault

pytestmark = pytest.mark.databases

PROJECT_URL = "git@git.example.com:team/app.git"


# -- prefixes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("ssh://git@Git.Example.com:22/team/", "ssh://git@git.example.com/team"),
        ("git@git.example.com:team/app.git", "ssh://git@git.example.com/team/app"),
        ("git@git.example.com:/team/app.git/", "ssh://git@git.example.com/team/app"),
        ("ssh://git@git.example.com/./team//app", "ssh://git@git.example.com/team/app"),
        ("ssh://git@git.example.com/", "ssh://git@git.example.com/"),
        ("ssh://git@git.example.com", "ssh://git@git.example.com/"),
        ("git@git.example.com:", "ssh://git@git.example.com/"),
        ("ssh://git.example.com:2222/team", "ssh://git.example.com:2222/team"),
        ("git@[2001:db8::1]:team/x.git", "ssh://git@[2001:db8::1]/team/x"),
        ("  ssh://git@h/team/  ", "ssh://git@h/team"),
    ],
)
def test_prefixes_are_canonical(written: str, canonical: str) -> None:
    assert parse_url_prefix(written).text == canonical
    # The canonical text is itself a prefix with the same meaning.
    assert parse_url_prefix(canonical) == parse_url_prefix(written)


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("https://git.example.com/team/", "url_https"),
        ("file:///etc", "url_file"),
        ("ext::sh -c id", "url_transport"),
        ("-oProxyCommand=id:team", "url_option_injection"),
        ("ssh://git@h/team/../x", "url_dot_segments"),
        ("/srv/git/team", "url_local_path"),
        ("", "url_empty"),
    ],
)
def test_prefixes_that_are_not_ssh_urls_are_refused(written: str, reason: str) -> None:
    with pytest.raises(RepolinkError) as caught:
        parse_url_prefix(written)
    assert caught.value.code == "key_rule_prefix_invalid"
    assert caught.value.message.startswith("key rule prefix: ")


@pytest.mark.parametrize(
    ("prefix", "url", "matches"),
    [
        # Path segments compare whole: a prefix never matches inside a segment.
        ("ssh://git@h/team", "git@h:team/app.git", True),
        ("ssh://git@h/team/", "ssh://git@h/team/sub/lib.git", True),
        ("ssh://git@h/team", "git@h:teamwork/app.git", False),
        ("ssh://git@h/team/app", "ssh://git@h/team/app-two.git", False),
        ("ssh://git@h/team", "git@h:team.git", True),
        # A whole repository URL, any spelling of it.
        ("git@h:team/app.git", "ssh://git@h:22/team/app", True),
        ("git@h:team/app.git", "ssh://git@h/team/app.git/", True),
        ("git@h:team/app.git", "git@h:team/app/sub.git", True),
        # Host (case-insensitive) and port must be equal.
        ("ssh://git@H.example/team", "git@h.example:team/app.git", True),
        ("ssh://git@h:2222/team", "git@h:team/app.git", False),
        ("ssh://git@h/team", "ssh://git@h:2222/team/app.git", False),
        ("ssh://git@h/team", "git@other:team/app.git", False),
        # Paths are case-sensitive.
        ("ssh://git@h/Team", "git@h:team/app.git", False),
        # A prefix without a user matches every user; one with a user only that user.
        ("ssh://h/team", "git@h:team/app.git", True),
        ("ssh://h/team", "ssh://h/team/app.git", True),
        ("ssh://bob@h/team", "git@h:team/app.git", False),
        ("ssh://git@h/team", "ssh://h/team/app.git", False),
        # A host alone matches every repository on it.
        ("ssh://git@h/", "git@h:any/thing.git", True),
        ("git@h:", "ssh://git@h/~alice/x.git", True),
    ],
)
def test_prefix_matching_on_segment_boundaries(prefix: str, url: str, matches: bool) -> None:
    assert parse_url_prefix(prefix).matches(parse_ssh_url(url)) is matches


PREFIXES = [
    "ssh://git@h/",
    "ssh://git@h/team",
    "ssh://git@h/team/app",
    "ssh://h/team/app",
    "ssh://git@h/team/app/vendor",
    "ssh://git@h:2222/team",
]


@pytest.mark.parametrize(
    ("url", "winner"),
    [
        ("git@h:team/app.git", "ssh://git@h/team/app"),  # user named beats user-less
        ("bob@h:team/app.git", "ssh://h/team/app"),  # the only one matching bob
        ("git@h:team/app/vendor/lib.git", "ssh://git@h/team/app/vendor"),
        ("git@h:team/other.git", "ssh://git@h/team"),
        ("git@h:teamwork/x.git", "ssh://git@h/"),
        ("ssh://git@h:2222/team/app.git", "ssh://git@h:2222/team"),
        ("ssh://git@h:2222/elsewhere.git", None),
        ("git@elsewhere:team/app.git", None),
    ],
)
def test_the_longest_matching_prefix_wins(url: str, winner: str | None) -> None:
    prefixes = [parse_url_prefix(text) for text in PREFIXES]
    for order in (prefixes, prefixes[::-1]):  # whatever order they are stored in
        best = longest_match(order, parse_ssh_url(url))
        assert (best.text if best is not None else None) == winner


def test_prefix_length_counts_segments_then_user() -> None:
    assert URLPrefix("git", "h", None, ("a", "b")).length == (2, 1)
    assert URLPrefix(None, "h", None, ("a",)).length == (1, 0)


# -- rules in the store, and the choice of key ------------------------------------------------


@pytest.fixture
def deploy_key(store: Store, vault: Vault) -> PrivateKey:
    """Project ``proj`` connected to PROJECT_URL with this deploy key (no fetch)."""
    key = generate_key()
    ProjectService(Settings(), store).create_project("Proj", slug="proj")
    with store.session() as session:
        create_connection(
            session, vault, "proj", parse_connection_url(PROJECT_URL), key, origin=KEY_GENERATED
        )
    return key


@pytest.fixture
def app(settings: Settings, store: Store, vault: Vault) -> Repolink:
    return Repolink(settings, store=store, vault=vault)


def _add_key(app: Repolink, hostname: str = "") -> str:
    return app.additional_keys.add_key("proj", hostname=hostname).fingerprint_sha256


def _choose(store: Store, url: str) -> tuple[str, str, str | None]:
    """What a checkout chooses, in its own transaction (choose_key's caller there)."""
    with store.session() as session:
        chosen = choose_key(session, "proj", parse_ssh_url(url))
    return chosen.fingerprint_sha256, chosen.source, chosen.rule_prefix


def test_without_rules_or_additional_keys_the_deploy_key_is_chosen(
    store: Store, deploy_key: PrivateKey
) -> None:
    fingerprint, source, prefix = _choose(store, "git@anywhere.example:x/y.git")
    assert (fingerprint, source, prefix) == (
        deploy_key.public_key.sha256_fingerprint,
        SOURCE_DEPLOY_KEY,
        None,
    )


def test_fallback_order_host_port_then_host_then_any_host_then_deploy(
    store: Store, app: Repolink, deploy_key: PrivateKey
) -> None:
    any_host = _add_key(app, "")
    any_host_later = _add_key(app, "")
    host_any_port = _add_key(app, "git.example.com")
    host_port = _add_key(app, "git.example.com:2222")
    other_host = _add_key(app, "other.example.com")

    assert _choose(store, "ssh://git@git.example.com:2222/t/r.git")[:2] == (
        host_port,
        SOURCE_ADDITIONAL_KEY,
    )
    assert _choose(store, "git@git.example.com:t/r.git")[0] == host_any_port
    assert _choose(store, "ssh://git@git.example.com:2200/t/r.git")[0] == host_any_port
    assert _choose(store, "git@other.example.com:t/r.git")[0] == other_host
    # Blank host name: any host; the oldest of equals first.
    assert _choose(store, "git@third.example.com:t/r.git")[0] == any_host
    assert any_host_later != any_host

    for fingerprint in (any_host, any_host_later):
        app.additional_keys.remove_key("proj", fingerprint)
    assert _choose(store, "git@third.example.com:t/r.git")[:2] == (
        deploy_key.public_key.sha256_fingerprint,
        SOURCE_DEPLOY_KEY,
    )


def test_a_rule_beats_host_matching_and_the_longest_rule_wins(
    store: Store, app: Repolink, deploy_key: PrivateKey
) -> None:
    for_host = _add_key(app, "git.example.com")
    vendor = _add_key(app, "elsewhere.example.com")
    app.key_rules.add_rule("proj", "ssh://git@git.example.com/team/", "deploy")
    app.key_rules.add_rule("proj", "git@git.example.com:team/vendor/lib.git", vendor)

    deploy = deploy_key.public_key.sha256_fingerprint
    assert _choose(store, "git@git.example.com:team/app.git") == (
        deploy,
        SOURCE_KEY_RULE,
        "ssh://git@git.example.com/team",
    )
    assert _choose(store, "git@git.example.com:team/vendor/lib") == (
        vendor,
        SOURCE_KEY_RULE,
        "ssh://git@git.example.com/team/vendor/lib",
    )
    # Outside every rule: the additional key for the host.
    assert _choose(store, "git@git.example.com:other/app.git")[:2] == (
        for_host,
        SOURCE_ADDITIONAL_KEY,
    )
    # The service answers as a checkout's transaction does.
    chosen = app.key_rules.choose_key("proj", parse_ssh_url("git@git.example.com:team/app.git"))
    assert (chosen.fingerprint_sha256, chosen.source) == (deploy, SOURCE_KEY_RULE)


def test_rules_are_listed_longest_first_and_removed_by_any_spelling(
    app: Repolink, deploy_key: PrivateKey
) -> None:
    extra = _add_key(app)
    app.key_rules.add_rule("proj", "ssh://git@h/", "deploy")
    app.key_rules.add_rule("proj", "git@h:team/app.git", extra)
    app.key_rules.add_rule("proj", "ssh://git@h/team/", "DEPLOY")
    rules = app.key_rules.list_rules("proj")
    assert [rule.prefix for rule in rules] == [
        "ssh://git@h/team/app",
        "ssh://git@h/team",
        "ssh://git@h/",
    ]
    assert [rule.key for rule in rules] == [extra, "deploy", "deploy"]
    deploy = deploy_key.public_key.sha256_fingerprint
    assert [rule.key_fingerprint_sha256 for rule in rules] == [extra, deploy, deploy]

    removed = app.key_rules.remove_rule("proj", "ssh://git@h:22/team/app.git/")
    assert removed.prefix == "ssh://git@h/team/app"
    assert [rule.prefix for rule in app.key_rules.list_rules("proj")] == [
        "ssh://git@h/team",
        "ssh://git@h/",
    ]


@pytest.mark.parametrize(
    ("prefix", "key", "code"),
    [
        ("git@h:team/", "SHA256:" + "A" * 43, "additional_key_not_found"),
        ("git@h:team/", "not a fingerprint", "fingerprint_invalid"),
        ("https://h/team/", "deploy", "key_rule_prefix_invalid"),
    ],
)
def test_bad_rules_are_refused(
    app: Repolink, deploy_key: PrivateKey, prefix: str, key: str, code: str
) -> None:
    with pytest.raises(RepolinkError) as caught:
        app.key_rules.add_rule("proj", prefix, key)
    assert caught.value.code == code


def test_the_same_canonical_prefix_twice_is_refused(app: Repolink, deploy_key: PrivateKey) -> None:
    app.key_rules.add_rule("proj", "git@h:team/", "deploy")
    with pytest.raises(RepolinkError) as caught:
        app.key_rules.add_rule("proj", "ssh://git@h:22/team", "deploy")
    assert caught.value.code == "key_rule_exists"
    assert caught.value.hint == "remove that key rule first"
    assert caught.value.context == {"project": "proj", "prefix": "ssh://git@h/team"}
    with pytest.raises(RepolinkError) as missing:
        app.key_rules.remove_rule("proj", "git@h:elsewhere/")
    assert missing.value.code == "key_rule_not_found"
    assert "repolink" not in missing.value.hint


def test_an_additional_key_used_by_a_rule_cannot_be_removed(
    store: Store, app: Repolink, deploy_key: PrivateKey
) -> None:
    extra = _add_key(app)
    app.key_rules.add_rule("proj", "git@h:team/", extra)
    with pytest.raises(RepolinkError) as caught:
        app.additional_keys.remove_key("proj", extra)
    assert caught.value.code == "additional_key_in_use"
    assert "ssh://git@h/team" in caught.value.message
    assert caught.value.hint == "remove those key rules first"
    app.key_rules.remove_rule("proj", "git@h:team/")
    removed = app.additional_keys.remove_key("proj", extra)
    with store.session() as session, pytest.raises(RepolinkError) as gone:
        get_key_record(session, removed.key_record_id)
    assert gone.value.code == "key_record_not_found"


def test_a_rule_for_the_deploy_key_follows_the_current_deploy_key(
    store: Store, vault: Vault, app: Repolink, deploy_key: PrivateKey
) -> None:
    app.key_rules.add_rule("proj", "git@h:team/", "deploy")
    with store.session() as session:
        rotated = store_private_key(session, vault, generate_key(), label="rotated deploy key")
        session.execute(update(RepositoryConnection).values(deploy_key_id=rotated.id))
        new_fingerprint = rotated.fingerprint_sha256
    assert _choose(store, "git@h:team/app.git")[:2] == (new_fingerprint, SOURCE_KEY_RULE)


def test_deleting_the_project_removes_its_rules_and_additional_keys(
    store: Store, app: Repolink, deploy_key: PrivateKey
) -> None:
    extra = _add_key(app)
    app.key_rules.add_rule("proj", "git@h:team/", extra)
    app.key_rules.add_rule("proj", "git@h:", "deploy")
    with store.session() as session:
        session.execute(delete(Project))
    with store.session() as session:
        for table in (AdditionalKey, KeyRule):
            assert session.scalar(select(func.count()).select_from(table)) == 0


def test_a_rule_is_removed_by_its_id(app: Repolink, deploy_key: PrivateKey) -> None:
    kept = app.key_rules.add_rule("proj", "git@h:team/", "deploy")
    extra = app.additional_keys.add_key("proj")
    gone = app.key_rules.add_rule("proj", "git@h:team/app.git", extra.id)  # a key by its id
    assert gone.key == extra.fingerprint_sha256
    assert app.key_rules.remove_rule("proj", gone.id) == gone
    assert app.key_rules.list_rules("proj") == [kept]
    with pytest.raises(RepolinkError) as missing:
        app.key_rules.remove_rule("proj", gone.id)
    assert (missing.value.code, missing.value.context) == (
        "key_rule_not_found",
        {"project": "proj"},
    )
