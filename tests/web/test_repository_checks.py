"""The Repository page's live checks (in process): the URL as the save judges it (an https
URL's SSH form suggested, keeping a port; the network policy), a pasted key's named error and
fix or its fingerprints and repairs — never the key — and trusting a host key is for site
admins only, as in the API."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from repolink.app import Repolink
from repolink.auth.principal import Role
from support.accountskit import make_account
from support.webkit import signed_in_pages

PAGE = "/ui/projects/acme/settings/repository"


@pytest.fixture(autouse=True)
def _people(app: Repolink) -> None:
    owner = make_account(app, "owner")
    make_account(app, "watcher")
    app.access.create_project(owner.principal, "Acme", slug="acme")
    app.access.set_member(owner.principal, "acme", "watcher", Role.VIEWER)


def private_key(tmp_path: Path, passphrase: str = "") -> str:
    path = tmp_path / "id"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)], check=True
    )
    return path.read_text()


@pytest.mark.parametrize(
    ("url", "suggestion"),
    [
        ("https://github.com/acme/widgets", "git@github.com:acme/widgets.git"),
        ("https://git.example.com:8443/team/app", "ssh://git@git.example.com:8443/team/app.git"),
    ],
)
def test_an_https_url_gets_its_ssh_form_suggested(app: Repolink, url: str, suggestion: str) -> None:
    with signed_in_pages(app, "owner") as pages:
        answer = pages.post(f"{PAGE}/check-url", {"url": url}, token_from=PAGE).json()
    assert answer["ok"] is False and answer["error"]["code"] == "url_https"
    assert answer["suggestion"] == suggestion and answer["error"]["hint"]


def test_a_url_the_network_policy_refuses_is_named(app: Repolink) -> None:
    with signed_in_pages(app, "owner") as pages:
        answer = pages.post(
            f"{PAGE}/check-url", {"url": "git@169.254.169.254:a/b.git"}, token_from=PAGE
        ).json()
    assert answer["error"]["code"] == "repository_url_forbidden"


def test_a_pinned_host_is_trusted_and_an_unknown_one_not_scanned_for_a_project_admin(
    app: Repolink,
) -> None:
    with signed_in_pages(app, "owner") as pages:
        pinned = pages.post(
            f"{PAGE}/check-url", {"url": "git@github.com:a/b.git"}, token_from=PAGE
        ).json()
        unknown = pages.post(
            f"{PAGE}/check-url", {"url": "git@127.0.0.1:a/b.git"}, token_from=PAGE
        ).json()
    assert pinned["host_key"] == "trusted"
    assert all(value.startswith("SHA256:") for value in pinned["fingerprints"])
    assert unknown["host_key"] == "unknown" and "presented" not in unknown


def test_only_a_site_admin_trusts_a_host_key(app: Repolink) -> None:
    with signed_in_pages(app, "owner") as pages:
        response = pages.post(
            f"{PAGE}/trust-host",
            {"host": "127.0.0.1", "port": "22", "fingerprint": "SHA256:" + "A" * 43},
            token_from=PAGE,
        )
        assert response.status_code == 403 and "site_admin_required" in response.text


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda key: key[: len(key) // 2], "key_missing_footer"),
        (
            lambda key: key[: len(key) // 2] + "\n-----END OPENSSH PRIVATE KEY-----\n",
            "key_truncated",
        ),
        (lambda key: "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n", "key_putty_format"),
    ],
)
def test_a_broken_key_is_named_with_its_fix_and_never_echoed(
    app: Repolink, tmp_path: Path, mangle: object, code: str
) -> None:
    text = mangle(private_key(tmp_path))  # type: ignore[operator]
    with signed_in_pages(app, "owner") as pages:
        response = pages.post(f"{PAGE}/check-key", {"private_key": text}, token_from=PAGE)
    answer = response.json()
    assert answer["ok"] is False and answer["error"]["code"] == code and answer["error"]["hint"]
    assert text.splitlines()[1] not in response.text


def test_a_public_key_and_a_protected_key_are_named(app: Repolink, tmp_path: Path) -> None:
    text = private_key(tmp_path, passphrase="secret words")
    public = (tmp_path / "id.pub").read_text()
    with signed_in_pages(app, "owner") as pages:
        pasted_public = pages.post(f"{PAGE}/check-key", {"private_key": public}, token_from=PAGE)
        protected = pages.post(f"{PAGE}/check-key", {"private_key": text}, token_from=PAGE)
        unlocked = pages.post(
            f"{PAGE}/check-key",
            {"private_key": text, "passphrase": "secret words"},
            token_from=PAGE,
        )
    assert pasted_public.json()["error"]["code"] == "key_is_public"
    assert protected.json()["error"]["code"] == "key_passphrase_required"
    assert unlocked.json()["ok"] is True


def test_a_good_key_answers_its_fingerprints_and_repairs(app: Repolink, tmp_path: Path) -> None:
    text = private_key(tmp_path)
    expected = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(tmp_path / "id.pub")], capture_output=True, text=True
    ).stdout.split()[1]
    with signed_in_pages(app, "owner") as pages:
        response = pages.post(
            f"{PAGE}/check-key",
            {"private_key": '"' + text.replace("\n", "\\n") + '"'},
            token_from=PAGE,
        )
    answer = response.json()
    assert answer["ok"] is True and answer["fingerprint_sha256"] == expected
    assert answer["repairs"]
    assert text.splitlines()[1] not in response.text


def test_a_viewer_may_not_use_the_checks(app: Repolink) -> None:
    with signed_in_pages(app, "watcher") as pages:
        response = pages.post(
            f"{PAGE}/check-url", {"url": "git@github.com:a/b.git"}, token_from=PAGE
        )
        assert response.status_code == 403
