"""Saving a connection with no fetch (what the API does before it queues the first fetch):
validation first, the generated key handed back once, replacement of an earlier connection."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from repolink.errors import Conflict, InvalidInput, NotFound, ValidationError
from repolink.git.mirrors import mirror_path
from repolink.keys import generate_key
from repolink.netpolicy import NetworkPolicy
from repolink.platform.targets import TargetPolicy
from repolink.store.models import KeyRecord
from repolink.store.models.platform import STATE_UNKNOWN, RepositoryConnection
from support.platformkit import HostedRepos, Platform, granted_key
from support.recording import RecordingRunner

pytestmark = pytest.mark.databases


def _count(platform: Platform, model: type) -> int:
    with platform.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_save_stores_without_fetching_and_hands_back_the_generated_key(
    platform: Platform, hosted: HostedRepos, recording: RecordingRunner
) -> None:
    platform.project("saved")
    recording.clear()  # trusting the host scanned its keys

    saved = platform.app.connections.save("saved", hosted.app.url(), key_type="ecdsa", bits=384)

    info = saved.connection
    assert (info.state, info.commits, info.attempted_at) == (STATE_UNKNOWN, 0, None)
    assert not saved.replaced
    assert saved.private_key is not None
    assert saved.private_key.public_key.openssh_line(False) in info.deploy_key.public_key
    assert "PRIVATE" not in repr(saved)
    assert not mirror_path(platform.settings, info.id).exists()
    assert recording.records == []


def test_an_imported_key_is_not_handed_back(platform: Platform, hosted: HostedRepos) -> None:
    platform.project("imported")
    key = granted_key(hosted.host, "app", "imported")

    saved = platform.app.connections.save("imported", hosted.app.url(), key=key)

    assert saved.private_key is None
    assert saved.connection.deploy_key.origin == "imported"


def test_replace_swaps_connection_index_keys_and_mirror(
    platform: Platform, hosted: HostedRepos
) -> None:
    outcome = platform.connect("swapped", hosted.app.url(), granted_key(hosted.host, "app", "s"))
    assert outcome.error is None
    old = outcome.connection
    connections = platform.app.connections

    with pytest.raises(Conflict) as exists:
        connections.save("swapped", hosted.other.url())
    assert exists.value.code == "connection_exists"

    saved = connections.save("swapped", hosted.other.url(), replace=True)

    assert saved.replaced and saved.connection.id != old.id
    assert saved.connection.url == hosted.other.url() and saved.connection.commits == 0
    assert not mirror_path(platform.settings, old.id).exists()
    assert _count(platform, RepositoryConnection) == 1
    assert _count(platform, KeyRecord) == 1  # the old deploy key went with its connection


def test_nothing_is_stored_when_the_input_is_refused(platform: Platform) -> None:
    platform.project("refused")
    connections = platform.app.connections
    strict = TargetPolicy(NetworkPolicy())

    with pytest.raises(InvalidInput) as https:
        connections.save("refused", "https://bitbucket.org/team/app.git")
    assert https.value.code == "invalid_url"
    with pytest.raises(ValidationError) as forbidden:
        connections.save("refused", "git@10.0.0.7:team/app.git", targets=strict)
    assert forbidden.value.code == "repository_url_forbidden"
    with pytest.raises(ValidationError) as bits:
        connections.save("refused", "git@bitbucket.invalid:a/b.git", key_type="rsa", bits=1000)
    assert bits.value.code == "key_bits_invalid"
    with pytest.raises(NotFound):
        connections.save("no-such-project", "git@bitbucket.invalid:a/b.git", key=generate_key())
    assert _count(platform, RepositoryConnection) == 0
    assert _count(platform, KeyRecord) == 0


def test_disconnect_without_a_connection_is_named(platform: Platform) -> None:
    platform.project("lonely")

    with pytest.raises(NotFound) as missing:
        platform.app.connections.disconnect("lonely")

    assert missing.value.code == "connection_not_found"
