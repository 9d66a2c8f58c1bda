"""Where a checkout writes: the destination directory, and the place of each submodule in it.

The destination must not exist or be an empty directory (:func:`prepare_dest`); when the
checkout fails, what it wrote is removed (:func:`undo`), so a build never starts on half a
tree. A submodule is written only into the empty directory ``checkout-index`` left for its
gitlink, reached without following a link (:func:`submodule_dir`).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from repolink.errors import Conflict, ValidationError

_MAX_SHOWN_PATH = 200


def prepare_dest(target: Path) -> bool:
    """Make sure ``target`` is an empty directory; True when it was created here."""
    resolved = target.resolve()
    try:
        info = resolved.stat()
    except FileNotFoundError:
        try:
            resolved.mkdir(parents=True)
        except OSError as exc:
            raise _dest_unusable(target, exc) from None
        return True
    except OSError as exc:
        raise _dest_unusable(target, exc) from None
    if not stat.S_ISDIR(info.st_mode):
        raise Conflict(
            "checkout_dest_not_empty",
            f"{target} exists and is not a directory",
            "give a directory that does not exist yet or is empty",
        )
    if any(resolved.iterdir()):
        raise Conflict(
            "checkout_dest_not_empty",
            f"{target} is not empty",
            "give a directory that does not exist yet or is empty",
        )
    return False


def _dest_unusable(target: Path, exc: OSError) -> ValidationError:
    reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    return ValidationError(
        "checkout_dest_invalid",
        f"cannot use {target} as the checkout directory: {reason}",
        "give a directory that can be created, or an empty one",
    )


def undo(target: Path, *, created: bool) -> None:
    """Remove what a failed checkout wrote (the directory too, when it made it)."""
    resolved = target.resolve()
    if created:
        shutil.rmtree(resolved, ignore_errors=True)
        return
    for child in resolved.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def submodule_dir(target: Path, relative: str) -> Path:
    """``target/relative`` after checking that every step is a real directory (not a link)
    below ``target``, and that it is empty: where checkout-index left a gitlink's place."""
    current = target
    for segment in relative.split("/"):
        if segment in ("", ".", "..") or segment.lower() == ".git":
            raise ValidationError(
                "submodule_path_invalid",
                f"the submodule path {shown_path(relative)} is not a plain relative path",
                "fix the submodule's path in the repository",
            )
        current = current / segment
        try:
            info = current.lstat()
        except OSError:
            info = None
        if info is None or not stat.S_ISDIR(info.st_mode):
            raise ValidationError(
                "submodule_path_invalid",
                f"the place of submodule {shown_path(relative)} is not a directory of the tree",
                "fix the submodule's path in the repository",
            )
    if any(current.iterdir()):
        raise ValidationError(
            "submodule_path_invalid",
            f"the place of submodule {shown_path(relative)} is not empty",
            "fix the submodule's path in the repository",
        )
    return current


def shown_path(path: str) -> str:
    """A repository path as a message may show it: plain when printable, else escaped."""
    shown = path if path.isprintable() else repr(path)[1:-1]
    return shown if len(shown) <= _MAX_SHOWN_PATH else shown[:_MAX_SHOWN_PATH] + "…"
