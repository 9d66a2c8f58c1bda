"""A flood of half-open SSH connections against `repolink host serve` (issue 10 §3.2).

    python bench/ssh_flood.py [--connections 3000] [--sources 1]

Opens ``--connections`` TCP connections to the embedded host, spread over ``--sources``
loopback addresses (127.0.0.2 …), that never say a word, then counts how many the host closed
at once (no SSH version line) and how many it holds; while they are open, a bystander from
127.0.0.1 runs `git ls-remote`, and its time is printed as a ratio to the same ls-remote with
no flood. The host runs with its default limits. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import Client, EmbeddedHost

WORK = Path(__file__).resolve().parent / ".work"


def timed_ls_remote(client: Client, host: EmbeddedHost) -> float | None:
    """Seconds the bystander's ls-remote took; ``None`` when it failed (its error printed)."""
    start = time.perf_counter()
    done = subprocess.run(
        ["git", "ls-remote", host.url("bench/small")],
        env=client.env(host.port),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(f"bystander's ls-remote failed: {done.stderr.strip().splitlines()[0]}")
        return None
    return time.perf_counter() - start


def flood(port: int, count: int, sources: int) -> list[socket.socket]:
    opened = []
    for n in range(count):
        source = f"127.0.0.{2 + n % sources}"
        sock = socket.socket()
        sock.setblocking(False)
        sock.bind((source, 0))
        sock.connect_ex(("127.0.0.1", port))
        opened.append(sock)
    return opened


def closed_and_held(socks: list[socket.socket], wait: float) -> tuple[int, int]:
    """Sockets the server closed (end of stream or reset) and sockets it greeted."""
    selector = selectors.DefaultSelector()
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
    closed = held = 0
    deadline = time.monotonic() + wait
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(256)
            except (ConnectionResetError, BlockingIOError):
                data = b""
            if data.startswith(b"SSH-"):
                held += 1
            else:
                closed += 1
            selector.unregister(sock)
    return closed, held


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--sources", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    WORK.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ssh-flood-", dir=WORK) as tmp:
        root = Path(tmp)
        client = Client.create(root)
        host = EmbeddedHost(root / "host", settings={})  # the defaults, as shipped
        host.cli("host", "repo", "create", "bench/small")
        host.cli("host", "account-key", "add", "bench", str(client.key) + ".pub", "--label", "b")
        try:
            host.start()
            client.trust(host.port)
            quiet = [timed_ls_remote(client, host) for _ in range(args.rounds)]
            started = time.perf_counter()
            socks = flood(host.port, args.connections, args.sources)
            opened_in = time.perf_counter() - started
            closed, held = closed_and_held(socks, wait=10.0)
            assert host.proc is not None
            descriptors = len(list(Path(f"/proc/{host.proc.pid}/fd").iterdir()))
            flooded = [timed_ls_remote(client, host) for _ in range(args.rounds)]
            for sock in socks:
                sock.close()
        finally:
            host.stop()

    quiet_s = statistics.median(t for t in quiet if t is not None)
    flooded_ok = [t for t in flooded if t is not None]
    print(
        f"{args.connections} half-open connections from {args.sources} source(s), "
        f"opened in {opened_in:.2f}s"
    )
    print(
        f"closed at once by the host: {closed}; held (greeted, awaiting login): {held}; "
        f"no answer within 10 s: {args.connections - closed - held}"
    )
    print(f"descriptors the host process holds during the flood: {descriptors}")
    print(f"bystander ls-remote during the flood: {len(flooded_ok)} of {args.rounds} succeeded")
    if flooded_ok:
        flooded_s = statistics.median(flooded_ok)
        print(
            f"bystander ls-remote median: quiet {quiet_s:.3f}s, during the flood "
            f"{flooded_s:.3f}s, ratio {flooded_s / quiet_s:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
