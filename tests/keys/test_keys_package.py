"""repolink.keys as a package: each exported name loads its module on first use, so reading a
stored public key does not load the cryptography library (issue 10 §2)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import repolink.keys


def test_every_exported_name_is_its_modules_own() -> None:
    for name in repolink.keys.__all__:
        module = importlib.import_module(f"repolink.keys.{repolink.keys._MODULE_OF[name]}")
        assert getattr(repolink.keys, name) is getattr(module, name), name
    assert set(repolink.keys._MODULE_OF) == set(repolink.keys.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        repolink.keys.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("no AttributeError")


def test_a_stored_public_key_needs_no_cryptography() -> None:
    code = (
        "import sys\n"
        "from repolink.knownhosts.pins import SHIPPED_PINS\n"
        "from repolink.knownhosts.values import stored_host_key\n"
        "pin = SHIPPED_PINS[0]\n"
        "print(stored_host_key(pin.key_line).sha256_fingerprint == pin.documented_fingerprint)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cryptography', 'repolink.keys'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    same, loaded = done.stdout.splitlines()
    assert same == "True"
    assert loaded == "['repolink.keys', 'repolink.keys.fingerprints', 'repolink.keys.public']"
