"""Known hosts, in process: anyone signed in reads the list, only site admins see the forms
and may scan, trust or remove (403 page otherwise, as the API); a scan the network policy
refuses is named beside the host field; an unknown key's confirmation page is the 404 page."""

from __future__ import annotations

import pytest

from repolink.app import Repolink
from support.accountskit import make_account
from support.webkit import signed_in_pages

PAGE = "/ui/known-hosts"


@pytest.fixture(autouse=True)
def _people(app: Repolink) -> None:
    make_account(app, "root", site_admin=True)
    make_account(app, "someone")


def test_anyone_reads_the_list_and_only_site_admins_get_the_forms(app: Repolink) -> None:
    shipped = app.known_hosts.list_known_hosts()
    with signed_in_pages(app, "someone") as pages:
        page = pages.get(PAGE)
        refused = pages.post(f"{PAGE}/scan", {"host": "github.com", "port": "22"}, token_from=PAGE)
    assert page.status_code == 200
    assert all(key.fingerprint in page.text for key in shipped)
    assert "Scan a host" not in page.text
    # The page they may read is in their navigation; the host's pages, which refuse them, not.
    assert f'<a href="{PAGE}"' in page.text
    assert ">Host repositories</a>" not in page.text
    assert refused.status_code == 403
    with signed_in_pages(app, "root") as pages:
        assert "Scan a host" in pages.get(PAGE).text


def test_a_scan_the_network_policy_refuses_is_named_beside_the_host(app: Repolink) -> None:
    with signed_in_pages(app, "root") as pages:
        refused = pages.post(
            f"{PAGE}/scan", {"host": "169.254.169.254", "port": "22"}, token_from=PAGE
        )
    assert refused.status_code in (400, 403)
    assert 'id="host-error"' in refused.text
    assert 'value="169.254.169.254"' in refused.text


def test_an_unknown_or_shipped_key_cannot_be_removed(app: Repolink) -> None:
    with signed_in_pages(app, "root") as pages:
        assert pages.get(f"{PAGE}/x/delete").status_code == 404
        assert pages.get(f"{PAGE}/999999/delete").status_code == 404
        gone = pages.post(f"{PAGE}/999999/delete", {}, token_from=PAGE)
    assert gone.status_code == 404
    with signed_in_pages(app, "someone") as pages:
        assert pages.get(f"{PAGE}/1/delete").status_code == 403
