"""Removing the host's access and account keys by id, SHA256 or MD5 fingerprint (issue 10 §1.7),
with the real ``repolink`` CLI and fingerprints as ``ssh-keygen -l`` prints them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from support.clikit import run_in_fresh_data_dir
from support.hostkit import KeyPair

MakeKey = Callable[[str], KeyPair]


_repolink = run_in_fresh_data_dir


def _ok(tmp_path: Path, *args: str, input: str = "") -> str:
    done = _repolink(tmp_path, *args, input=input)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _ssh_keygen_fingerprint(key: KeyPair, hash_name: str) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", hash_name, "-f", str(key.private_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()[1]


# The three ways of naming a key, each as a person would copy it.
REFS: dict[str, Callable[[KeyPair, int], str]] = {
    "id": lambda _key, key_id: str(key_id),
    "sha256": lambda key, _id: _ssh_keygen_fingerprint(key, "sha256"),
    "md5": lambda key, _id: _ssh_keygen_fingerprint(key, "md5"),
    "bare md5": lambda key, _id: _ssh_keygen_fingerprint(key, "md5").removeprefix("MD5:"),
}


@pytest.mark.parametrize("form", REFS)
def test_an_access_key_is_removed_by_id_or_fingerprint(
    tmp_path: Path, make_key: MakeKey, form: str
) -> None:
    _ok(tmp_path, "host", "repo", "create", "team/app")
    gone, kept = make_key("gone"), make_key("kept")
    added = [
        json.loads(
            _ok(
                tmp_path,
                "host",
                "access-key",
                "add",
                "team/app",
                "-",
                "--label",
                key_name,
                "--json",
                input=key.public_line,
            )
        )
        for key_name, key in (("kept", kept), ("gone", gone))
    ]

    done = _ok(
        tmp_path,
        "host",
        "access-key",
        "remove",
        "team/app",
        REFS[form](gone, added[1]["id"]),
        "--yes",
    )

    assert f"removed access key {added[1]['id']} ({gone.fingerprint}) from team/app" in done
    listed = json.loads(_ok(tmp_path, "host", "access-key", "list", "team/app", "--json"))
    assert [key["fingerprint_sha256"] for key in listed] == [kept.fingerprint]


@pytest.mark.parametrize("form", REFS)
def test_an_account_key_is_removed_by_id_or_fingerprint(
    tmp_path: Path, make_key: MakeKey, form: str
) -> None:
    kept, gone = make_key("kept"), make_key("gone")
    _ok(
        tmp_path,
        "host",
        "account-key",
        "add",
        "team",
        "-",
        "--label",
        "kept",
        input=kept.public_line,
    )
    added = json.loads(
        _ok(
            tmp_path,
            "host",
            "account-key",
            "add",
            "team",
            "-",
            "--label",
            "gone",
            "--json",
            input=gone.public_line,
        )
    )

    done = _ok(
        tmp_path, "host", "account-key", "remove", "team", REFS[form](gone, added["id"]), "-y"
    )

    assert f"removed account key {added['id']} ({gone.fingerprint}) from team" in done
    listed = json.loads(_ok(tmp_path, "host", "account-key", "list", "team", "--json"))
    assert [key["fingerprint_sha256"] for key in listed] == [kept.fingerprint]


def test_a_ref_naming_no_key_of_this_repository_is_not_found_by_that_name(
    tmp_path: Path, make_key: MakeKey
) -> None:
    _ok(tmp_path, "host", "repo", "create", "team/app")
    _ok(tmp_path, "host", "repo", "create", "team/lib")
    elsewhere = make_key("elsewhere")
    _ok(
        tmp_path,
        "host",
        "access-key",
        "add",
        "team/lib",
        "-",
        "--label",
        "lib",
        input=elsewhere.public_line,
    )
    md5 = _ssh_keygen_fingerprint(elsewhere, "md5")

    for ref, named in ((elsewhere.fingerprint, elsewhere.fingerprint), (md5, md5), ("7", "7")):
        done = _repolink(tmp_path, "host", "access-key", "remove", "team/app", ref, "--yes")
        assert done.returncode == 2
        assert done.stderr.startswith(
            f"error: access_key_not_found: the repository team/app has no access key {named} "
        ), done.stderr
    account = _repolink(
        tmp_path, "host", "account-key", "remove", "team", elsewhere.fingerprint, "--yes"
    )
    assert account.returncode == 2
    assert f"has no account key {elsewhere.fingerprint}" in account.stderr
    # The key stays where it is.
    assert len(json.loads(_ok(tmp_path, "host", "access-key", "list", "team/lib", "--json"))) == 1


@pytest.mark.parametrize("ref", ["SHA256:short", "aa:bb", "0", "-1", "key one", "x" * 200])
def test_a_ref_that_is_no_id_or_fingerprint_is_key_ref_invalid(
    tmp_path: Path, make_key: MakeKey, ref: str
) -> None:
    _ok(tmp_path, "host", "repo", "create", "team/app")
    for command in (["access-key", "remove", "team/app"], ["account-key", "remove", "team"]):
        done = _repolink(tmp_path, "host", *command, "--yes", "--", ref)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: key_ref_invalid: "), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert "SHA256" in done.stderr and "MD5" in done.stderr  # the fix names the forms


def test_a_pasted_private_key_is_never_echoed(tmp_path: Path, make_key: MakeKey) -> None:
    _ok(tmp_path, "host", "repo", "create", "team/app")
    private = make_key("pasted").private_path.read_text()
    done = _repolink(tmp_path, "host", "access-key", "remove", "team/app", "--yes", "--", private)
    assert done.returncode == 2
    assert "key_ref_invalid" in done.stderr
    assert "PRIVATE" not in done.stderr and private.splitlines()[1] not in done.stderr


def test_help_explains_the_three_forms(tmp_path: Path) -> None:
    for command in (["access-key", "remove"], ["account-key", "remove"]):
        shown = " ".join(_ok(tmp_path, "host", *command, "--help").split())
        assert "id" in shown and "SHA256 fingerprint" in shown and "MD5 fingerprint" in shown
