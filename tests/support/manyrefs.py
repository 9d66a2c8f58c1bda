"""A repository that punishes a ref reader reading an object per ref (issue 10 §3.7).

One commit with a huge message, many annotated tags and many plain refs pointing at it, built
by one ``git fast-import``, one ``git hash-object`` for the tag objects and a ``packed-refs``
file written directly (loose ref files for 100k refs would take minutes to create). The tests
use it small, ``bench/refs.py`` at full size.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_PERSON = b"Many Refs <refs@example.invalid> 1700000000 +0000"


@dataclass(frozen=True)
class ManyRefs:
    path: Path
    commit: str
    tag_objects: dict[str, str]  # ref name -> tag object id


def build_many_refs_repository(
    path: Path, *, message_bytes: int, annotated: int, plain: int
) -> ManyRefs:
    """A bare repository at ``path``: ``refs/heads/main`` at one commit whose message is
    ``message_bytes`` long, ``annotated`` annotated tags and ``plain`` lightweight tags at it."""
    subprocess.run(["git", "init", "--quiet", "--bare", str(path)], check=True)
    message = b"A subject\n\n" + b"x" * message_bytes + b"\n"
    stream = b"commit refs/heads/main\nauthor %s\ncommitter %s\ndata %d\n%s\n" % (
        _PERSON,
        _PERSON,
        len(message),
        message,
    )
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=stream, check=True)
    subprocess.run(["git", "-C", str(path), "symbolic-ref", "HEAD", "refs/heads/main"], check=True)
    commit = _git(path, "rev-parse", "refs/heads/main")
    names = [f"refs/tags/release-{n:06d}" for n in range(annotated)]
    tag_objects = dict(zip(names, _write_tags(path, commit, names), strict=True))
    lines = [f"{oid} {name}" for name, oid in tag_objects.items()]
    lines += [f"{commit} refs/tags/plain-{n:06d}" for n in range(plain)]
    lines.sort(key=lambda line: line.split(" ", 1)[1])
    (path / "packed-refs").write_text("# pack-refs with: sorted \n" + "\n".join(lines) + "\n")
    # Packed, as a fetched mirror's objects are.
    subprocess.run(["git", "-C", str(path), "repack", "-a", "-d", "-q"], check=True)
    return ManyRefs(path, commit, tag_objects)


def _write_tags(path: Path, commit: str, names: list[str]) -> list[str]:
    """Tag objects for ``names`` at ``commit``, written by one ``git hash-object``."""
    if not names:
        return []
    with tempfile.TemporaryDirectory() as scratch:
        files = []
        for name in names:
            short = name.removeprefix("refs/tags/")
            body = (
                f"object {commit}\ntype commit\ntag {short}\ntagger {_PERSON.decode()}\n\n{short}\n"
            )
            file = Path(scratch) / short
            file.write_text(body)
            files.append(str(file))
        ids = _git(path, "hash-object", "-w", "-t", "tag", "--stdin-paths", stdin="\n".join(files))
    return ids.split()


def _git(path: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["git", "-C", str(path), *args], input=stdin, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()
