"""The Repository page (in process): viewers see the connection but no forms, admins save a
URL with a generated or pasted key (errors beside their fields under their precise codes), a
generated private key is answered once as a no-store download and never again, the public key
downloads as repolink-<project>.pub, the state is JSON for the page's script, strangers 404."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from repolink.app import Repolink
from repolink.auth.principal import LOCAL_ADMIN, Role
from repolink.git.progress import FetchProgress
from repolink.platform.fetch_jobs import FETCH_RETRY_POLICY, execute_run, settle
from repolink.platform.fetch_progress import ProgressRecorder
from repolink.settings import Settings
from repolink.store import Store
from support.accountskit import make_account
from support.platformkit import HostedRepos
from support.webcommits import connect_to_app
from support.webkit import signed_in_pages

PAGE = "/ui/projects/acme/settings/repository"
URL = "git@github.com:acme/widgets.git"


@pytest.fixture(autouse=True)
def _people(app: Repolink) -> None:
    owner = make_account(app, "owner")
    make_account(app, "watcher")
    make_account(app, "stranger")
    app.access.create_project(owner.principal, "Acme", slug="acme")
    app.access.set_member(owner.principal, "acme", "watcher", Role.VIEWER)


def ssh_keygen(tmp_path: Path, name: str = "id", *options: str) -> Path:
    path = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t", "-f", str(path), *options],
        check=True,
    )
    return path


def test_an_admin_generates_a_key_first_and_takes_the_private_half_once(app: Repolink) -> None:
    with signed_in_pages(app, "owner") as pages:
        first = pages.get(PAGE).text
        assert 'id="generate-form"' in first and "Not connected yet" in first
        # Generate SSH key before any URL (the article's first step), with the download.
        response = pages.post(
            f"{PAGE}/generate", {"key_type": "ed25519", "download": "1"}, token_from=PAGE
        )
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-disposition"] == 'attachment; filename="repolink-acme"'
        private = response.text
        assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        prepared = app.connections.prepared_key("acme")
        assert prepared is not None and prepared.key.key_type == "ssh-ed25519"
        page = pages.get(PAGE).text
        for shown in (
            prepared.key.public_key,
            prepared.key.fingerprint_sha256,
            prepared.key.fingerprint_md5,
            "read-only access key",
            "Use the generated key",
        ):
            assert shown in page
        public = pages.get(f"{PAGE}/public-key?key=generated")
        assert public.headers["content-disposition"] == 'attachment; filename="repolink-acme.pub"'
        assert public.text.strip() == prepared.key.public_key
        body = private.split("-----")[2].strip().splitlines()[1]

        # Then the SSH URL and Save: the connection takes that very key.
        response = pages.post(PAGE, {"url": URL, "key_source": "generate"}, token_from=PAGE)
        assert (response.status_code, response.headers["location"]) == (303, PAGE)
        page = pages.get(PAGE).text
        assert "Saved with the generated key" in page
        connection = app.connections.connection_info("acme")
        assert connection.url == URL and connection.deploy_key.id == prepared.key.id
        assert app.connections.prepared_key("acme") is None
        assert connection.deploy_key.public_key in page and "Use the generated key" not in page
        for path in ("", "/public-key", "/state"):
            assert body not in pages.get(PAGE + path).text
        assert pages.get(f"{PAGE}/public-key").text.strip() == connection.deploy_key.public_key
        assert pages.get(f"{PAGE}/public-key?key=generated").status_code == 404
    [run] = app.fetch_requests.history("acme")
    assert run.trigger == "connect"
    audit = app.audit.entries(LOCAL_ADMIN, project="acme").items
    [entry] = [e for e in audit if e.action == "deploy_key.prepare"]
    assert entry.target == prepared.key.fingerprint_sha256


def test_generating_without_the_download_redirects_and_a_bad_type_is_named(
    app: Repolink,
) -> None:
    with signed_in_pages(app, "owner") as pages:
        response = pages.post(f"{PAGE}/generate", {"key_type": "rsa"}, token_from=PAGE)
        assert (response.status_code, response.headers["location"]) == (303, PAGE)
        assert "Generated a new key" in pages.get(PAGE).text
        response = pages.post(f"{PAGE}/generate", {"key_type": "dsa"}, token_from=PAGE)
        assert response.status_code == 400
        error = response.text.split('id="key_type-error"', 1)[1].split("</div>", 1)[0]
        assert "key_type_invalid" in error and "Fix:" in error
    prepared = app.connections.prepared_key("acme")
    assert prepared is not None and prepared.key.key_type == "ssh-rsa"


def test_without_the_download_the_save_redirects_with_a_notice(app: Repolink) -> None:
    with signed_in_pages(app, "owner") as pages:
        response = pages.post(
            PAGE, {"url": URL, "key_source": "generate", "key_type": "rsa"}, token_from=PAGE
        )
        assert (response.status_code, response.headers["location"]) == (303, PAGE)
        assert "Saved with a new key" in pages.get(PAGE).text
    assert app.connections.connection_info("acme").deploy_key.key_type == "ssh-rsa"


def test_a_pasted_private_key_is_imported(app: Repolink, tmp_path: Path) -> None:
    key = ssh_keygen(tmp_path)
    with signed_in_pages(app, "owner") as pages:
        text = key.read_text().replace("\n", "\r\n")
        response = pages.post(
            PAGE, {"url": URL, "key_source": "paste", "private_key": text}, token_from=PAGE
        )
        assert response.status_code == 303
        page = pages.get(PAGE).text
        assert "-----BEGIN" not in page
    info = app.connections.connection_info("acme")
    assert info.deploy_key.origin == "imported"
    assert info.deploy_key.public_key.split()[1] == Path(f"{key}.pub").read_text().split()[1]


@pytest.mark.parametrize(
    ("form", "field", "code"),
    [
        ({"url": "https://github.com/acme/widgets"}, "url", "url_https"),
        ({"url": "ssh://git@169.254.169.254/acme/w.git"}, "url", "repository_url_forbidden"),
        (
            {"url": URL, "key_source": "paste", "private_key": ""},
            "private_key",
            "key_choice_required",
        ),
    ],
)
def test_errors_are_shown_beside_their_fields(
    app: Repolink, form: dict[str, str], field: str, code: str
) -> None:
    with signed_in_pages(app, "owner") as pages:
        response = pages.post(PAGE, {"key_source": "generate", **form}, token_from=PAGE)
        assert response.status_code == 400
        error = response.text.split(f'id="{field}-error"', 1)[1].split("</div>", 1)[0]
        assert code in error and "Fix:" in error


def test_a_pasted_public_key_is_named_beside_the_key_field(app: Repolink, tmp_path: Path) -> None:
    key = ssh_keygen(tmp_path)
    with signed_in_pages(app, "owner") as pages:
        response = pages.post(
            PAGE,
            {"url": URL, "key_source": "paste", "private_key": Path(f"{key}.pub").read_text()},
            token_from=PAGE,
        )
        assert response.status_code == 400
        error = response.text.split('id="private_key-error"', 1)[1].split("</div>", 1)[0]
        assert "key_is_public" in error and "Fix:" in error


def test_a_viewer_sees_the_state_but_no_forms_and_cannot_post(app: Repolink) -> None:
    app.connections.save("acme", URL)
    with signed_in_pages(app, "watcher") as pages:
        page = pages.get(PAGE)
        assert page.status_code == 200 and URL in page.text
        assert 'id="connect-form"' not in page.text and 'id="fetch-form"' not in page.text
        token_page = "/ui/account"
        assert pages.post(PAGE, {"url": URL}, token_from=token_page).status_code == 403
        assert pages.post(f"{PAGE}/fetch", token_from=token_page).status_code == 403
        assert pages.post(f"{PAGE}/doctor", token_from=token_page).status_code == 403
        assert pages.post(f"{PAGE}/generate", token_from=token_page).status_code == 403
        assert 'id="generate-form"' not in page.text
        assert pages.get(f"{PAGE}/state").json()["state"] == "unknown"


def test_a_stranger_gets_404_everywhere(app: Repolink) -> None:
    app.connections.save("acme", URL)
    with signed_in_pages(app, "stranger") as pages:
        for path in ("", "/state", "/public-key", "/doctor"):
            assert pages.get(PAGE + path).status_code == 404
        for action in ("/doctor", "/generate"):
            assert pages.post(PAGE + action, token_from="/ui/account").status_code == 404


def test_a_form_without_its_csrf_token_is_refused(app: Repolink) -> None:
    with signed_in_pages(app, "owner") as pages:
        response = pages.post(PAGE, {"url": URL, "key_source": "generate"})
        assert response.status_code == 403 and "csrf_token_invalid" in response.text
    with pytest.raises(Exception, match="connection"):
        app.connections.connection_info("acme")


def test_fetch_queues_a_run_and_answers_json_to_the_script(app: Repolink) -> None:
    app.connections.save("acme", URL)
    with signed_in_pages(app, "owner") as pages:
        response = pages.post(f"{PAGE}/fetch", token_from=PAGE)
        assert (response.status_code, response.headers["location"]) == (303, PAGE)
        response = pages.post(
            f"{PAGE}/fetch", token_from=PAGE, headers={"Accept": "application/json"}
        )
        assert response.status_code == 202 and response.json()["state"] == "queued"
        state = pages.get(f"{PAGE}/state").json()
        assert state["connected"] and state["fetch"]["state"] == "queued"
        assert state["fetch"]["trigger"] == "web"
        # Recorded as the page's, on the fetch history too.
        assert (
            '<td><span class="cell-label">Trigger: </span>web'
            in pages.get("/ui/projects/acme/settings/fetches").text
        )
    assert [run.trigger for run in app.fetch_requests.history("acme")] == ["web"]


def test_the_state_of_an_unconnected_project(app: Repolink) -> None:
    with signed_in_pages(app, "owner") as pages:
        assert pages.get(f"{PAGE}/state").json() == {"connected": False, "state": "unknown"}
        assert "Not connected yet" in pages.get(PAGE).text
        assert pages.get(f"{PAGE}/public-key").status_code == 404
    assert LOCAL_ADMIN.site_admin


def test_the_doctor_runs_on_demand_only(app: Repolink, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens on port 1 of this machine: the doctor's TCP step fails at once.
    app.connections.save("acme", "ssh://git@127.0.0.1:1/acme/widgets.git")
    runs: list[str] = []
    check_project = app.doctor.check_project

    def counted(project: str, **kwargs: object) -> object:
        runs.append(project)
        return check_project(project, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(app.doctor, "check_project", counted)
    with signed_in_pages(app, "watcher") as pages:
        assert 'id="doctor-form"' not in pages.get(PAGE).text  # a viewer: no button
    with signed_in_pages(app, "owner") as pages:
        page = pages.get(PAGE).text
        assert 'id="doctor-form"' in page and 'id="doctor-title"' not in page
        assert pages.get(f"{PAGE}/doctor").status_code == 404
        assert pages.client.head(f"{PAGE}/doctor").status_code == 404
        assert pages.post(f"{PAGE}/doctor").status_code == 403  # no CSRF token
        assert runs == []
        response = pages.post(f"{PAGE}/doctor", token_from=PAGE)
        assert runs == ["acme"]
        assert response.status_code == 200
        checklist = response.text.split('id="doctor-result"', 1)[1].split("</section>", 1)[0]
        assert 'id="doctor-title"' in checklist
        assert "connection_refused" in checklist and "Fix:" in checklist


def test_the_state_shows_a_running_fetch_s_progress_then_its_outcome(
    app: Repolink, settings: Settings, store: Store, hosted: HostedRepos
) -> None:
    connect_to_app(app, settings, store, hosted, "acme")
    hosted.app.commit("fetched from the page")
    with signed_in_pages(app, "owner") as pages:
        started = pages.post(
            f"{PAGE}/fetch", token_from=PAGE, headers={"Accept": "application/json"}
        ).json()
        # A worker takes the run; git reports how far it is.
        job = app.fetch_requests.queue.claim_run(started["id"])
        assert job is not None
        assert pages.get(f"{PAGE}/state").json()["fetch"]["progress"] is None
        report = ProgressRecorder(app.store, job.id, job.attempt, interval=0)
        report(FetchProgress("Receiving objects", done=450, total=1000, percent=45))
        running = pages.get(f"{PAGE}/state").json()["fetch"]
        assert (running["state"], running["finished"]) == ("running", False)
        assert running["progress"]["line"] == "Receiving objects 45% (450/1000)"
        assert (running["progress"]["phase"], running["progress"]["percent"]) == (
            "Receiving objects",
            45,
        )
        # The attempt ends: the outcome, with the commits it brought.
        outcome = execute_run(app.store, app.fetches, job)
        app.fetch_requests.queue.finish([settle(job, outcome, FETCH_RETRY_POLICY, app.clock())])
        done = pages.get(f"{PAGE}/state").json()
        assert done["fetch"]["state"] == "done" and done["fetch"]["finished"]
        assert (done["fetch"]["new_commits"], done["fetch"]["progress"]) == (1, None)
        assert done["state"] == "ok" and done["error"] is None
