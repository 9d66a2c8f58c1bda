"""repolink.vault: AES-256-GCM tokens bound to a record id, versioned master keys."""

from __future__ import annotations

import base64
import os
import pickle
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repolink.errors import VaultError
from repolink.settings import Settings
from repolink.vault import Vault, load_vault, rotate_master_key, token_version

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(100, 132))
RECORD = "0123456789abcdef0123456789abcdef"
OTHER_RECORD = "fedcba9876543210fedcba9876543210"
SECRET = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def file_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def env_settings(tmp_path: Path, value: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", secret_key=value)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- tokens ---------------------------------------------------------------------------------


def test_round_trip_and_fresh_nonce_per_encryption() -> None:
    vault = Vault({1: KEY_1})
    first = vault.encrypt(SECRET, record_id=RECORD)
    second = vault.encrypt(SECRET, record_id=RECORD)
    assert first != second
    assert SECRET not in first
    assert vault.decrypt(first, record_id=RECORD) == SECRET
    assert vault.decrypt(second, record_id=RECORD) == SECRET
    assert token_version(first) == 1


def test_token_is_bound_to_its_record_id() -> None:
    vault = Vault({1: KEY_1})
    token = vault.encrypt(SECRET, record_id=RECORD)
    with pytest.raises(VaultError) as err:
        vault.decrypt(token, record_id=OTHER_RECORD)
    assert err.value.code == "vault_decrypt_failed"
    assert err.value.hint


@pytest.mark.parametrize("position", [5, 16, 17, 40, -1])  # nonce, body, tag
def test_any_flipped_byte_fails(position: int) -> None:
    vault = Vault({1: KEY_1})
    token = bytearray(vault.encrypt(SECRET, record_id=RECORD))
    token[position] ^= 0x01
    with pytest.raises(VaultError) as err:
        vault.decrypt(bytes(token), record_id=RECORD)
    assert err.value.code == "vault_decrypt_failed"


def test_truncated_or_foreign_token_fails() -> None:
    vault = Vault({1: KEY_1})
    token = vault.encrypt(SECRET, record_id=RECORD)
    for broken in (b"", token[:20], b"\x02" + token[1:]):
        with pytest.raises(VaultError) as err:
            vault.decrypt(broken, record_id=RECORD)
        assert err.value.code == "vault_decrypt_failed"


def test_wrong_master_key_under_the_same_version_fails() -> None:
    token = Vault({1: KEY_1}).encrypt(SECRET, record_id=RECORD)
    with pytest.raises(VaultError) as err:
        Vault({1: KEY_2}).decrypt(token, record_id=RECORD)
    assert err.value.code == "vault_decrypt_failed"


def test_token_of_an_unloaded_version_names_the_missing_version() -> None:
    token = Vault({1: KEY_1, 2: KEY_2}).encrypt(SECRET, record_id=RECORD)
    with pytest.raises(VaultError) as err:
        Vault({1: KEY_1}).decrypt(token, record_id=RECORD)
    assert err.value.code == "vault_key_missing"
    assert "version 2" in err.value.hint
    assert "REPOLINK_SECRET_KEY" in err.value.hint


def test_highest_version_encrypts_and_older_tokens_need_reencrypt() -> None:
    old = Vault({1: KEY_1})
    token_v1 = old.encrypt(SECRET, record_id=RECORD)
    new = Vault({1: KEY_1, 2: KEY_2})
    token_v2 = new.encrypt(SECRET, record_id=RECORD)
    assert new.current_version == 2
    assert token_version(token_v2) == 2
    assert new.needs_reencrypt(token_v1)
    assert not new.needs_reencrypt(token_v2)
    assert new.decrypt(token_v1, record_id=RECORD) == SECRET
    assert not old.needs_reencrypt(token_v1)


def test_empty_record_id_is_refused() -> None:
    with pytest.raises(VaultError) as err:
        Vault({1: KEY_1}).encrypt(SECRET, record_id="")
    assert err.value.code == "vault_record_id_missing"


def test_vault_never_shows_or_pickles_its_keys() -> None:
    vault = Vault({1: KEY_1, 2: KEY_2})
    shown = repr(vault) + str(vault)
    assert shown == "Vault(versions=[1, 2], current=2)" * 2
    for key in (KEY_1, KEY_2):
        assert b64(key) not in shown
        assert key.hex() not in shown
    with pytest.raises(TypeError):
        pickle.dumps(vault)


@pytest.mark.parametrize(
    ("keys", "fragment"),
    [({}, "no master key"), ({1: b"short"}, "5 bytes"), ({0: KEY_1}, "out of range")],
)
def test_bad_master_keys_are_refused(keys: dict[int, bytes], fragment: str) -> None:
    with pytest.raises(VaultError) as err:
        Vault(keys)
    assert err.value.code == "vault_key_invalid"
    assert fragment in err.value.message


# --- REPOLINK_SECRET_KEY ------------------------------------------------------------------------


def test_secret_key_single_base64_is_version_1(tmp_path: Path) -> None:
    vault = load_vault(env_settings(tmp_path, b64(KEY_1)))
    assert vault.versions == [1]
    token = vault.encrypt(SECRET, record_id=RECORD)
    assert Vault({1: KEY_1}).decrypt(token, record_id=RECORD) == SECRET
    assert not (tmp_path / "data").exists()  # no key file when the environment holds the key


def test_secret_key_versioned_list(tmp_path: Path) -> None:
    vault = load_vault(env_settings(tmp_path, f" 2:{b64(KEY_2)} , 1:{b64(KEY_1)} "))
    assert vault.versions == [1, 2]
    assert vault.current_version == 2
    token = vault.encrypt(SECRET, record_id=RECORD)
    assert Vault({2: KEY_2}).decrypt(token, record_id=RECORD) == SECRET


def test_secret_key_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPOLINK_SECRET_KEY", f"1:{b64(KEY_1)},3:{b64(KEY_2)}")
    monkeypatch.setenv("REPOLINK_DATA_DIR", str(tmp_path / "data"))
    assert load_vault(Settings()).versions == [1, 3]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("not base64 at all!", "not valid base64"),
        (b64(b"x" * 16), "16 bytes"),
        (f"1:{b64(KEY_1)},1:{b64(KEY_2)}", "twice"),
        (f"one:{b64(KEY_1)}", "not 'version:base64'"),
        (f"1:{b64(KEY_1)},{b64(KEY_2)}", "not 'version:base64'"),
        (f"0:{b64(KEY_1)}", "out of range"),
        (" , ", "no master key"),
    ],
)
def test_bad_secret_key_is_refused_without_echoing_it(
    tmp_path: Path, value: str, fragment: str
) -> None:
    with pytest.raises(VaultError) as err:
        load_vault(env_settings(tmp_path, value))
    assert err.value.code == "vault_key_invalid"
    assert fragment in err.value.message
    shown = err.value.one_line() + repr(err.value)
    for part in value.replace(":", ",").split(","):
        if len(part.strip()) > 3:
            assert part.strip() not in shown


def test_rotation_is_refused_when_keys_come_from_the_environment(tmp_path: Path) -> None:
    with pytest.raises(VaultError) as err:
        rotate_master_key(env_settings(tmp_path, b64(KEY_1)))
    assert err.value.code == "vault_key_from_environment"
    assert "REPOLINK_SECRET_KEY" in err.value.hint
    assert b64(KEY_1) not in err.value.one_line()


# --- the key file -------------------------------------------------------------------------------


def test_key_file_is_created_private_on_first_use_and_reused(tmp_path: Path) -> None:
    settings = file_settings(tmp_path)
    first = load_vault(settings)
    key_file = settings.resolved_secret_key_file
    assert key_file == tmp_path / "data" / "secret.key"
    assert mode(key_file) == 0o600
    assert mode(tmp_path / "data") == 0o700
    version, _, encoded = key_file.read_text().strip().partition(":")
    assert version == "1"
    assert len(base64.b64decode(encoded)) == 32
    token = first.encrypt(SECRET, record_id=RECORD)
    again = load_vault(settings)
    assert key_file.read_text().count("\n") == 1
    assert again.decrypt(token, record_id=RECORD) == SECRET
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["secret.key"]


def test_explicit_key_file_location_gets_a_private_parent(tmp_path: Path) -> None:
    key_file = tmp_path / "elsewhere" / "keys" / "master.key"
    load_vault(Settings(data_dir=tmp_path / "data", secret_key_file=key_file))
    assert mode(key_file) == 0o600
    assert mode(key_file.parent) == 0o700


def test_existing_key_file_with_comments(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(f"# rotated 2024\n1:{b64(KEY_1)}\n\n2:{b64(KEY_2)}\n")
    key_file.chmod(0o600)
    vault = load_vault(Settings(data_dir=tmp_path, secret_key_file=key_file))
    assert vault.versions == [1, 2]


@pytest.mark.parametrize("bad_mode", [0o640, 0o604, 0o644, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, bad_mode: int) -> None:
    settings = file_settings(tmp_path)
    load_vault(settings)
    settings.resolved_secret_key_file.chmod(bad_mode)
    with pytest.raises(VaultError) as err:
        load_vault(settings)
    assert err.value.code == "vault_key_file_permissions"
    assert f"chmod 600 {settings.resolved_secret_key_file}" in err.value.hint


def test_corrupt_key_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    settings = file_settings(tmp_path)
    load_vault(settings)
    key_file = settings.resolved_secret_key_file
    key_file.write_text("1:c2VjcmV0LXNob3J0\n")
    with pytest.raises(VaultError) as err:
        load_vault(settings)
    assert err.value.code == "vault_key_invalid"
    assert "c2VjcmV0LXNob3J0" not in err.value.one_line()
    key_file.write_bytes(b"1:\xff\xfe\n")
    with pytest.raises(VaultError) as err:
        load_vault(settings)
    assert err.value.code == "vault_key_invalid"


def test_unreadable_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.mkdir(mode=0o700)
    with pytest.raises(VaultError) as err:
        load_vault(Settings(data_dir=tmp_path, secret_key_file=key_file))
    assert err.value.code == "vault_key_file_unreadable"


def test_rotation_appends_a_version_and_keeps_old_tokens_working(tmp_path: Path) -> None:
    settings = file_settings(tmp_path)
    key_file = settings.resolved_secret_key_file
    old_token = load_vault(settings).encrypt(SECRET, record_id=RECORD)
    with key_file.open("a") as handle:
        handle.write("# a note the operator wrote\n")
    before = key_file.read_text()
    assert rotate_master_key(settings) == 2
    after = key_file.read_text()
    assert after.startswith(before)
    assert after.splitlines()[-1].startswith("2:")
    assert mode(key_file) == 0o600
    vault = load_vault(settings)
    assert vault.current_version == 2
    assert vault.decrypt(old_token, record_id=RECORD) == SECRET
    assert token_version(vault.encrypt(SECRET, record_id=RECORD)) == 2
    assert rotate_master_key(settings) == 3
    assert not [p for p in key_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_rotation_before_first_use_starts_at_version_2(tmp_path: Path) -> None:
    settings = file_settings(tmp_path)
    assert rotate_master_key(settings) == 2
    assert load_vault(settings).versions == [1, 2]


# --- several processes at once --------------------------------------------------------------

_RACE = """
import os, sys, time
from pathlib import Path
from repolink.settings import Settings
from repolink.vault import load_vault, rotate_master_key
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.001)
settings = Settings(data_dir=Path(sys.argv[2]))
if sys.argv[3] == "load":
    sys.stdout.buffer.write(load_vault(settings).encrypt(b"hello", record_id="r").hex().encode())
else:
    print(rotate_master_key(settings))
"""


def _race(tmp_path: Path, what: str, count: int) -> list[str]:
    go = tmp_path / "go"
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("REPOLINK_SECRET_KEY", None)
    env.pop("REPOLINK_SECRET_KEY_FILE", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE, str(go), str(tmp_path / "data"), what],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(count)
    ]
    time.sleep(0.5)  # let every interpreter start and wait at the barrier
    go.touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        outputs.append(out.decode().strip())
    return outputs


def test_processes_starting_together_share_one_new_key_file(tmp_path: Path) -> None:
    tokens = _race(tmp_path, "load", 6)
    vault = load_vault(file_settings(tmp_path))
    assert vault.versions == [1]
    for token in tokens:
        assert vault.decrypt(bytes.fromhex(token), record_id="r") == b"hello"


def test_concurrent_rotations_each_get_their_own_version(tmp_path: Path) -> None:
    load_vault(file_settings(tmp_path))
    versions = sorted(int(v) for v in _race(tmp_path, "rotate", 4))
    assert versions == [2, 3, 4, 5]
    assert load_vault(file_settings(tmp_path)).versions == [1, 2, 3, 4, 5]
