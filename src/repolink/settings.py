"""The one settings object everything is built from (environment prefix ``REPOLINK_``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from repolink.errors import ValidationError
from repolink.netpolicy import NetworkPolicy, parse_networks


def default_data_dir() -> Path:
    """The per-user data directory (``~/.local/share/repolink`` on Linux, honouring
    ``XDG_DATA_HOME``): the same wherever a command runs, so ``make run`` and every CLI command
    share one store instead of each working directory growing its own."""
    import platformdirs  # only when REPOLINK_DATA_DIR is unset

    return Path(platformdirs.user_data_dir("repolink", appauthor=False))


# Settings no child process needs: a secret goes only where it is used.
NOT_FOR_CHILDREN = frozenset({"admin_password"})


class Settings(BaseModel):
    """Where repolink keeps its data and how it reaches its secrets.

    Nothing reads the environment except this class; every component receives an instance, and
    a child repolink process gets its environment from :meth:`to_env`.
    """

    # A plain model reading its variables itself (`_from_environment`), not pydantic-settings:
    # importing that cost every command more than the rest of its start-up (issue 10 §2).
    model_config = ConfigDict(extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description=(
            "Directory for the database, the master key file, mirrors and host data; default: "
            "the user's data directory (platformdirs), e.g. ~/.local/share/repolink."
        ),
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite file repolink.db inside data_dir.",
    )
    secret_key: SecretStr | None = Field(
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
    admin_token: SecretStr | None = Field(
        default=None,
        description="A bearer token accepted as admin by the HTTP APIs, besides stored tokens.",
    )
    admin_password: SecretStr | None = Field(
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
    host_api_token: SecretStr | None = Field(
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
    allowed_networks: str = Field(
        default="",
        description=(
            "Comma-separated addresses or CIDR networks (e.g. 10.0.0.0/8,::1) that webhook "
            "URLs and repository URLs given to the API may point at although they are "
            "loopback, private, link-local or otherwise not public; default: none."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        """Each setting not given in code from its ``REPOLINK_<NAME>`` variable. An empty
        variable counts as unset: ``REPOLINK_DATA_DIR= repolink …`` must not mean "the working
        directory" (that is how a second, empty store appeared beside the real one)."""
        if not isinstance(data, dict):
            return data
        from_environment = {
            name: value
            for name in cls.model_fields
            if (value := os.environ.get(f"REPOLINK_{name.upper()}"))
        }
        return {**from_environment, **data}

    @field_validator("allowed_networks")
    @classmethod
    def _networks_are_cidrs(cls, value: str) -> str:
        return ",".join(str(network) for network in parse_networks(value))

    @property
    def network_policy(self) -> NetworkPolicy:
        """What outbound connections made for a client may reach (:mod:`repolink.netpolicy`)."""
        return NetworkPolicy.from_text(self.allowed_networks)

    def to_env(self) -> dict[str, str]:
        """The ``REPOLINK_`` variables from which a child repolink process builds these same
        settings — its data directory and database even when these were built in code.

        Paths are absolute (the child may start elsewhere). The master key, when it is
        configured in the environment, goes with them: a child's environment, never its
        argument list, is where a secret may travel.
        """
        environment: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None or name in NOT_FOR_CHILDREN:
                continue
            if name == "data_dir":
                value = self.resolved_data_dir
            elif name == "secret_key_file":
                value = self.resolved_secret_key_file
            elif isinstance(value, SecretStr):
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
    def resolved_secret_key_file(self) -> Path:
        if self.secret_key_file is not None:
            return self.secret_key_file.expanduser().resolve()
        return self.resolved_data_dir / "secret.key"


def load_settings() -> Settings:
    """:class:`Settings` from the environment; a value that does not fit its setting is
    ``settings_invalid``, naming the variable and never repeating its value (it may be a
    secret)."""
    try:
        return Settings()
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        variable = f"REPOLINK_{field.upper()}"
        raise ValidationError(
            "settings_invalid",
            f"the environment variable {variable} is not valid: {first['msg']}",
            f"set {variable} to a valid value, or unset it to use the default",
        ) from None
