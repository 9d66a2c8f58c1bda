"""Synthetic repositories for the benchmarks, built with `git fast-import` in seconds."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

AUTHOR = b"Bench Author <bench@example.invalid>"


def _fast_import_stream(commits: int, files: int) -> Iterator[bytes]:
    timestamp = 1_700_000_000
    for n in range(1, commits + 1):
        path = f"src/module_{n % files:04d}.txt"
        body = f"line {n}\n".encode() * (1 + n % 7)
        message = f"Change {n} to {path}\n".encode()
        yield b"commit refs/heads/main\n"
        yield b"mark :%d\n" % n
        yield b"author %s %d +0000\n" % (AUTHOR, timestamp + n)
        yield b"committer %s %d +0000\n" % (AUTHOR, timestamp + n)
        yield b"data %d\n%s" % (len(message), message)
        if n > 1:
            yield b"from :%d\n" % (n - 1)
        yield b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(body), body)


def generate_bare_repository(path: Path, *, commits: int, files: int = 500) -> Path:
    """A bare repository at `path` with one branch `main` of `commits` linear commits."""
    subprocess.run(["git", "init", "--quiet", "--bare", str(path)], check=True)
    proc = subprocess.Popen(
        ["git", "-C", str(path), "fast-import", "--quiet"], stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    for chunk in _fast_import_stream(commits, files):
        proc.stdin.write(chunk)
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")
    subprocess.run(["git", "-C", str(path), "symbolic-ref", "HEAD", "refs/heads/main"], check=True)
    subprocess.run(["git", "-C", str(path), "repack", "-a", "-d", "-q"], check=True)
    return path


def add_annotated_tags(path: Path, count: int) -> Path:
    """``count`` annotated tags ``vN`` on commits spread evenly over ``main`` (git/git has about
    900, with some 85k commits): a ref set whose advertisement costs what a real project's does."""
    history = subprocess.run(
        ["git", "-C", str(path), "rev-list", "--reverse", "main"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    step = max(1, len(history) // max(count, 1))
    proc = subprocess.Popen(
        ["git", "-C", str(path), "fast-import", "--quiet"], stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    for n in range(count):
        target = history[min(n * step, len(history) - 1)]
        message = f"Release {n}\n".encode()
        proc.stdin.write(b"tag v%d\nfrom %s\n" % (n, target.encode()))
        proc.stdin.write(b"tagger %s %d +0000\n" % (AUTHOR, 1_700_000_000 + n))
        proc.stdin.write(b"data %d\n%s" % (len(message), message))
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")
    subprocess.run(["git", "-C", str(path), "pack-refs", "--all"], check=True)
    return path
