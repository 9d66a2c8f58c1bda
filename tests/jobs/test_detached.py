"""A detached worker process: settings travel in its environment, never on its command line."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

from pydantic import SecretStr

from repolink.jobs.detached import spawn_detached
from repolink.settings import Settings
from support.recording import RecordingRunner

MASTER_KEY = base64.b64encode(b"k" * 32).decode()


def test_the_worker_gets_the_settings_in_its_environment_and_no_secret_in_its_argv(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    settings = Settings(
        data_dir=data,
        database_url=f"sqlite:///{tmp_path / 'elsewhere.db'}",
        secret_key=SecretStr(MASTER_KEY),
    )
    recording = RecordingRunner()

    started = spawn_detached(settings, ["host", "hook", "deliver"], what="test", runner=recording)

    assert started
    [record] = recording.records
    assert record.kind == "start_detached"
    assert record.argv == (sys.executable, "-m", "repolink", "host", "hook", "deliver")
    assert not any(MASTER_KEY in word for word in record.argv)
    # The child builds these very settings from its environment, wherever it starts.
    assert record.env["REPOLINK_SECRET_KEY"] == MASTER_KEY
    assert record.env["REPOLINK_DATA_DIR"] == str(data.resolve())
    assert record.env["REPOLINK_DATABASE_URL"] == settings.database_url
    assert record.cwd == data.resolve()
