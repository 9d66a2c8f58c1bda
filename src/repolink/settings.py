"""The one settings object everything is built from (environment prefix ``REPOLINK_``).

A plain class, not a pydantic model: every command builds one, and importing pydantic and
building the model cost a CLI read command more than its whole query (issue 10 §2). Each
setting is declared once, with its type, default, bounds and description; values given in code
and ``REPOLINK_<NAME>`` variables are converted and checked the same way.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repolink.errors import URLError, ValidationError
from repolink.netpolicy import IPNetwork, NetworkPolicy, parse_networks


def default_data_dir() -> Path:
    """The per-user data directory (``~/.local/share/repolink`` on Linux, honouring
    ``XDG_DATA_HOME``): the same wherever a command runs, so ``make run`` and every CLI command
    share one store instead of each working directory growing its own."""
    import platformdirs  # only when REPOLINK_DATA_DIR is unset

    return Path(platformdirs.user_data_dir("repolink", appauthor=False))


# Settings no child process needs: a secret goes only where it is used.
NOT_FOR_CHILDREN = frozenset({"admin_password"})


class Secret:
    """A secret setting: its text only through :meth:`get_secret_value`, never in a repr.
    A setting given in code takes a text, this, or anything else with ``get_secret_value``
    (pydantic's ``SecretStr``)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _cidrs(value: str) -> str:
    return ",".join(str(network) for network in parse_networks(value))


def _ssh_server_url(value: str) -> str:
    """``ssh://USER@HOST[:PORT]``, read as a connection's URL is, with no path: a repository's
    path is appended to it."""
    from repolink.urls import parse_ssh_url  # only when the setting is set

    base = value.strip().rstrip("/")
    try:
        parse_ssh_url(f"{base}/workspace/repository.git")
    except URLError:
        raise ValueError("it should be ssh://USER@HOST or ssh://USER@HOST:PORT") from None
    if not base.startswith("ssh://") or "/" in base[len("ssh://") :]:
        raise ValueError("it should be ssh://USER@HOST or ssh://USER@HOST:PORT, with no path")
    return base


def _origin(value: str) -> str:
    """``scheme://host[:port]`` of a public URL, lower-cased; a path is refused."""
    from urllib.parse import urlsplit

    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError("give the scheme and host only, e.g. https://repolink.example.com")
    return f"{parts.scheme}://{parts.netloc.lower()}"


@dataclass(frozen=True)
class _Spec:
    """One setting: what :func:`Field` declares, and the type its annotation names."""

    default: Any = None
    default_factory: Callable[[], Any] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    normalise: Callable[[Any], Any] | None = None
    description: str = ""
    kind: str = ""
    optional: bool = False


def Field(
    *,
    default: Any = None,
    default_factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    normalise: Callable[[Any], Any] | None = None,
    description: str = "",
) -> Any:
    """A setting's declaration in :class:`Settings`' body."""
    return _Spec(default, default_factory, ge, gt, le, normalise, description)


class Settings:
    """Where repolink keeps its data and how it reaches its secrets.

    Nothing reads the environment except this class; every component receives an instance, and
    a child repolink process gets its environment from :meth:`to_env`. ``Settings(name=value,
    …)`` takes values in code; each setting not given is read from its ``REPOLINK_<NAME>``
    variable, an empty variable counting as unset (``REPOLINK_DATA_DIR= repolink …`` must not
    mean "the working directory": that is how a second, empty store appeared beside the real
    one). A value that does not fit is ``settings_invalid``, naming the variable, never the
    value. Instances are immutable; :meth:`model_copy` makes a changed one.
    """

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description=(
            "Directory for the database, the master key file, mirrors and host data; default: "
            "the user's data directory (platformdirs), e.g. ~/.local/share/repolink."
        ),
    )
    host_storage: Path | None = Field(
        default=None,
        description=(
            "Directory of the built-in host's repositories, the one storage every host "
            "process behind one address mounts (its SSH host keys are kept there too, so all "
            "present the same keys); it must exist and be writable. Default: "
            "data_dir/host/repositories (host keys in data_dir/host)."
        ),
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite file repolink.db inside data_dir.",
    )
    secret_key: Secret | None = Field(
        default=None,
        description=(
            "Master key(s) for private keys at rest: base64 of 32 bytes, or several as "
            "'version:base64,…' (highest version encrypts). Default: data_dir/secret.key."
        ),
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="File holding the master keys; default data_dir/secret.key (created 0600).",
    )
    admin_token: Secret | None = Field(
        default=None,
        description="A bearer token accepted as admin by the HTTP APIs, besides stored tokens.",
    )
    admin_password: Secret | None = Field(
        default=None,
        description=(
            "The password `repolink serve` gives the site admin 'admin' it creates on its very "
            "first start (no users yet); unset: a one-time password is generated and printed "
            "once. Read on that first start only."
        ),
    )
    host_api_url: str | None = Field(
        default=None,
        description=(
            "A Git host's Bitbucket-shaped API (http://HOST:PORT of a repolink host, or an API "
            "root such as https://api.bitbucket.org/2.0) on which a new deploy key is "
            "registered as a read-only access key (repo connect --register-on-host)."
        ),
    )
    host_api_token: Secret | None = Field(
        default=None,
        description=(
            "Bearer token for a Git host's Bitbucket-shaped API, used to add a new deploy key "
            "as a read-only access key when connecting a project (repo connect "
            "--register-on-host)."
        ),
    )
    git_timeout: float = Field(
        default=600.0, description="Wall-clock limit in seconds for one git/ssh process."
    )
    ssh_connect_timeout: int = Field(default=15, description="ssh ConnectTimeout in seconds.")
    ssh_control_persist: int = Field(
        default=60,
        ge=1,
        le=86_400,
        description=(
            "Seconds a shared SSH connection to a Git host stays open after its last use, so "
            "the next fetch costs no handshake."
        ),
    )
    server_ssh_control_persist: int = Field(
        default=900,
        ge=1,
        le=86_400,
        description=(
            "The same in a long-lived server (`repolink serve` with fetch workers): refreshes "
            "there find the connection warm — no process, no handshake."
        ),
    )
    server_max_warm_connections: int = Field(
        default=32,
        ge=0,
        description=(
            "Shared SSH connections a server keeps open at most; beyond, the least recently "
            "used are closed."
        ),
    )
    scout_min_objects: int = Field(
        default=50_000,
        ge=0,
        description=(
            "A first fetch whose clone reports at least this many objects (or reports nothing "
            "for a moment: a large history being enumerated) indexes its commits while the "
            "clone runs, from a partial clone of the commits alone; 0 turns that off."
        ),
    )
    worker_stalled_after: float = Field(
        default=30.0,
        ge=3,
        le=3600,
        description=(
            "PostgreSQL: seconds a job worker may go without a heartbeat (it sends one every "
            "third of this) before the other workers take its jobs over."
        ),
    )
    fetch_lease: float = Field(
        default=60.0,
        ge=3,
        le=3600,
        description=(
            "Seconds a claimed fetch is reserved for the process carrying it out, renewed every "
            "third of it while the fetch runs: how long the fetch of a process that died (a "
            "machine lost, SIGKILL) waits before another takes it over."
        ),
    )
    fetch_progress_interval: float = Field(
        default=0.5,
        ge=0,
        description=(
            "How often, at most, a running fetch records git's progress (phase, percent) for "
            "the pages to show, in seconds; a fetch that ends sooner records none."
        ),
    )
    live_heartbeat: float = Field(
        default=15.0,
        gt=0,
        description=(
            "Seconds a page's live update stream waits for a change notification "
            "(PostgreSQL) before it reads again anyway and sends a keep-alive."
        ),
    )
    live_poll_interval: float = Field(
        default=2.0,
        gt=0,
        description=(
            "Seconds between a live update stream's reads where no notification can be "
            "trusted to come: on SQLite (another process's writes), and on PostgreSQL while "
            "the listening connection is away."
        ),
    )
    # What one peer may hold of the embedded SSH host (DESIGN.md §5, issue 10 §3.2, §3.3).
    ssh_max_startups: int = Field(
        default=64,
        ge=1,
        description="Unauthenticated SSH connections at once; more are closed on arrival.",
    )
    ssh_max_startups_per_source: int = Field(
        default=10,
        ge=1,
        description="Unauthenticated SSH connections at once from one source address.",
    )
    ssh_login_grace_time: float = Field(
        default=30.0, gt=0, description="Seconds an SSH client has to authenticate."
    )
    ssh_max_connections: int = Field(
        default=256, ge=1, description="SSH connections at once, authenticated or not."
    )
    ssh_max_sessions: int = Field(
        default=10, ge=1, description="Sessions (channels) open at once on one SSH connection."
    )
    ssh_max_processes_per_key: int = Field(
        default=20, ge=1, description="git services running at once for one key."
    )
    ssh_idle_timeout: float = Field(
        default=600.0,
        gt=0,
        description="Seconds a git service may go without moving a byte before it is stopped.",
    )

    http_request_timeout: float = Field(
        default=20.0,
        gt=0,
        description=(
            "Seconds an HTTP connection has to send a whole request, headers and body, from "
            "the moment it opens or its previous answer was sent; then it is closed."
        ),
    )
    http_max_connections: int = Field(
        default=256,
        ge=1,
        description=(
            "Open HTTP connections the host API accepts; beyond, the one that has waited "
            "longest for its request makes way, or the new one is answered 503 server_busy."
        ),
    )
    shutdown_grace: float = Field(
        default=10.0,
        ge=0,
        description=(
            "Seconds a stopping server (SIGINT, SIGTERM) gives running jobs and requests to "
            "finish before it cancels them; a cancelled job runs again at the next start."
        ),
    )
    webhook_gather: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description=(
            "Seconds a fetch queued by a webhook waits before it runs, gathering the deliveries "
            "of a burst (many pushes, a host's retries) into that one fetch; 0 runs it at once."
        ),
    )
    openssh_url: str | None = Field(
        default=None,
        normalise=_ssh_server_url,
        description=(
            "How git clients reach this data directory's host through the system's sshd "
            "(OpenSSH mode), ssh://USER@HOST[:PORT], e.g. ssh://git@git.example.com. Set where "
            "sshd's AuthorizedKeysCommand runs repolink: the forced command passes it on. A "
            "push then queues the fetches of this data directory's projects connected to the "
            "pushed repository at that address, and webhook payloads carry clone links."
        ),
    )
    public_url: str | None = Field(
        default=None,
        normalise=_origin,
        description=(
            "The address people reach the web pages at, e.g. https://repolink.example.com "
            "(behind a TLS-terminating proxy the server itself sees plain HTTP). With https the "
            "session cookie is Secure and named __Host-repolink_session; forms are accepted "
            "only from this origin. Unset: the origin the request itself names."
        ),
    )
    allowed_networks: str = Field(
        default="",
        normalise=_cidrs,
        description=(
            "Comma-separated addresses or CIDR networks (e.g. 10.0.0.0/8,::1) that webhook "
            "URLs and repository URLs given to the API may point at although they are "
            "loopback, private, link-local or otherwise not public; default: none."
        ),
    )

    trusted_proxies: str = Field(
        default="",
        normalise=_cidrs,
        description=(
            "Comma-separated addresses or CIDR networks of the reverse proxies in front of the "
            "web pages (e.g. 10.0.0.5,fd00::/8). A request from one of them is counted, for "
            "sign-in throttling, by the client address they name in X-Forwarded-For; any "
            "other request by its own peer address (its X-Forwarded-For is ignored). Default: "
            "none."
        ),
    )

    def __init__(self, **given: Any) -> None:
        unknown = sorted(set(given) - set(_FIELDS))
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(unknown)}")
        for name, spec in _FIELDS.items():
            if name in given:
                value = _convert(name, spec, given[name])
            elif text := os.environ.get(f"REPOLINK_{name.upper()}"):
                value = _convert(name, spec, text)
            elif spec.default_factory is not None:
                value = spec.default_factory()
            else:
                value = spec.default
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("settings are immutable: make a changed copy with model_copy")

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Settings:
        """These settings with ``update``'s values instead (the name pydantic gave it)."""
        values = {name: getattr(self, name) for name in _FIELDS}
        return type(self)(**{**values, **(update or {})})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Settings):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _FIELDS)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELDS)
        return f"Settings({shown})"

    @property
    def public_https(self) -> bool:
        """Whether people reach the server over HTTPS (:attr:`public_url`)."""
        return self.public_url is not None and self.public_url.startswith("https://")

    @property
    def network_policy(self) -> NetworkPolicy:
        """What outbound connections made for a client may reach (:mod:`repolink.netpolicy`)."""
        return NetworkPolicy.from_text(self.allowed_networks)

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        """The networks of :attr:`trusted_proxies`."""
        return parse_networks(self.trusted_proxies)

    def to_env(self) -> dict[str, str]:
        """The ``REPOLINK_`` variables from which a child repolink process builds these same
        settings — its data directory and database even when these were built in code.

        Paths are absolute (the child may start elsewhere). The master key, when it is
        configured in the environment, goes with them: a child's environment, never its
        argument list, is where a secret may travel.
        """
        environment: dict[str, str] = {}
        for name in _FIELDS:
            value = getattr(self, name)
            if value is None or name in NOT_FOR_CHILDREN:
                continue
            if name == "data_dir":
                value = self.resolved_data_dir
            elif name == "secret_key_file":
                value = self.resolved_secret_key_file
            elif name == "host_storage":
                value = self.resolved_host_storage
            elif isinstance(value, Secret):
                value = value.get_secret_value()
            environment[f"REPOLINK_{name.upper()}"] = str(value)
        return environment

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'repolink.db'}"

    @property
    def resolved_host_storage(self) -> Path:
        """Where the built-in host's repositories live: the one place that path is made."""
        if self.host_storage is not None:
            return self.host_storage.expanduser().resolve()
        return self.resolved_data_dir / "host" / "repositories"

    @property
    def resolved_secret_key_file(self) -> Path:
        if self.secret_key_file is not None:
            return self.secret_key_file.expanduser().resolve()
        return self.resolved_data_dir / "secret.key"


def load_settings() -> Settings:
    """:class:`Settings` from the environment; a value that does not fit its setting is
    ``settings_invalid``, naming the variable and never repeating its value (it may be a
    secret)."""
    return Settings()


def _declared(cls: type) -> dict[str, _Spec]:
    """Each setting of ``cls``: its :func:`Field` and the type its annotation names."""
    declared: dict[str, _Spec] = {}
    for name, annotation in cls.__annotations__.items():
        spec = cls.__dict__.get(name)
        if not isinstance(spec, _Spec):
            continue
        kind, _, none = str(annotation).partition(" | ")
        declared[name] = _Spec(**{**spec.__dict__, "kind": kind, "optional": none == "None"})
        delattr(cls, name)  # read from the instance, never the declaration
    return declared


_FIELDS = _declared(Settings)


def _convert(name: str, spec: _Spec, value: Any) -> Any:
    """``value`` as the setting's type, within its bounds; else ``settings_invalid``."""
    try:
        if value is None and spec.optional:
            return None
        converted = _CONVERTERS[spec.kind](value)
        if isinstance(converted, int | float):
            _check_bounds(spec, converted)
        return spec.normalise(converted) if spec.normalise is not None else converted
    except (TypeError, ValueError) as exc:
        variable = f"REPOLINK_{name.upper()}"
        raise ValidationError(
            "settings_invalid",
            f"the environment variable {variable} is not valid: {exc}",
            f"set {variable} to a valid value, or unset it to use the default",
        ) from None


def _check_bounds(spec: _Spec, number: float) -> None:
    if spec.ge is not None and not number >= spec.ge:
        raise ValueError(f"it should be at least {spec.ge:g}")
    if spec.gt is not None and not number > spec.gt:
        raise ValueError(f"it should be greater than {spec.gt:g}")
    if spec.le is not None and not number <= spec.le:
        raise ValueError(f"it should be at most {spec.le:g}")


def _to_path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    if isinstance(value, str) and value and "\0" not in value:
        return Path(value)
    raise ValueError("it should be a path")


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError("it should be a text")


def _to_secret(value: Any) -> Secret:
    if isinstance(value, str):
        return Secret(value)
    if callable(getattr(value, "get_secret_value", None)):
        return Secret(_to_text(value.get_secret_value()))
    raise ValueError("it should be a text")


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError("it should be a whole number")


def _to_float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("it should be a number") from None
    else:
        raise ValueError("it should be a number")
    if not math.isfinite(number):
        raise ValueError("it should be a finite number")
    return number


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "Path": _to_path,
    "str": _to_text,
    "Secret": _to_secret,
    "int": _to_int,
    "float": _to_float,
}
