"""The player-protection admin (accounts/admin_protection.py) through Django's test client:
read-only lists, the policy as configured, and the finance reports behind the export permission."""

from __future__ import annotations

import pytest

from tests.admin.conftest import admin, login, staff, superuser  # noqa: F401  (fixtures)
from tests.protection.conftest import exclude, set_limit
from tests.tables.helpers import new_player

pytestmark = pytest.mark.django_db
REPORTS = "/admin/accounts/protectionevent/reports/"


def test_limits_exclusions_and_events_are_listed_read_only(admin):  # noqa: F811
    user, _ = new_player()
    set_limit(user, "deposit", "24h", 500)
    exclude(user, "time_out", days=2)
    for model in ("playerlimit", "selfexclusion", "protectionevent"):
        page = admin.get(f"/admin/accounts/{model}/")
        assert page.status_code == 200 and user.encode() in page.content, model
        assert admin.get(f"/admin/accounts/{model}/add/").status_code == 403


def test_the_policy_is_shown_as_configured(admin, settings):  # noqa: F811
    settings.PLAYER_TRANSFERS_ENABLED = False
    settings.MAX_SINGLE_DEPOSIT = {"EUR": 250000}
    page = admin.get(REPORTS)
    assert page.status_code == 200
    assert b"PLAYER_TRANSFERS_ENABLED</td><td>False" in page.content and b"EUR 250000" in page.content


def test_a_report_downloads_and_a_bad_date_is_a_form_error(admin):  # noqa: F811
    new_player(funded=100)
    response = admin.get(REPORTS, {"report": "player-activity", "date": "2030-01-01", "format": "csv"})
    assert response.status_code == 200 and response.streaming
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("date,owner_ref,account_id,currency,beginning_balance")
    bad = admin.get(REPORTS, {"report": "player-activity", "date": "2030-13-01", "format": "csv"})
    assert bad.status_code == 200 and not bad.streaming and b"YYYY-MM-DD" in bad.content


def test_reports_need_the_export_permission(staff):  # noqa: F811
    support = staff("accounts.view_protectionevent")
    assert b"needs the permission" in support.get(REPORTS).content
    query = {"report": "player-liability", "date": "2030-01-01", "format": "jsonl"}
    assert support.get(REPORTS, query).status_code == 403
    finance = staff("accounts.view_protectionevent", "ledger.export_ledger", username="finance")
    assert finance.get(REPORTS, query).status_code == 200
    assert staff(username="nobody").get(REPORTS).status_code == 403


START = "/admin/accounts/selfexclusion/start/"


def start_form(client, owner, kind="time_out", days=7, token="t-1"):
    return client.post(START, {"owner_ref": owner, "kind": kind, "days": days, "token": token})


def test_support_starts_a_time_out_the_player_asked_for_and_is_recorded(admin, superuser):  # noqa: F811
    from accounts.models import ProtectionEvent, SelfExclusion
    from accounts.services import account_deposit
    from balance_project.errors import ApplicationError
    from tests.tables.helpers import new_key

    user, wallet = new_player()
    assert b"Start a self-exclusion" in admin.get("/admin/accounts/selfexclusion/").content
    assert b'name="token"' in admin.get(START).content
    response = start_form(admin, user)
    assert response.status_code == 302
    assert start_form(admin, user).status_code == 302  # the same form again starts nothing more
    exclusion = SelfExclusion.objects.get(owner_ref=user)
    assert (exclusion.kind, exclusion.actor) == ("time_out", superuser.username)
    assert ProtectionEvent.objects.get(owner_ref=user).actor == superuser.username
    with pytest.raises(ApplicationError) as caught:
        account_deposit(client="c", idempotency_key=new_key(), account_id=wallet, amount=1)
    assert caught.value.code == "self_excluded"


def test_a_bad_exclusion_form_is_an_error_and_starts_nothing(admin):  # noqa: F811
    from accounts.models import SelfExclusion

    user, _ = new_player()
    for kind, days in (("self_exclusion", 30), ("time_out", 43)):
        page = start_form(admin, user, kind=kind, days=days, token=f"bad-{kind}")
        assert page.status_code == 200 and b"lasts" in page.content
    assert start_form(admin, "not a player id!", token="bad-owner").status_code == 200
    assert not SelfExclusion.objects.exists()


def test_starting_needs_its_permission(staff):  # noqa: F811
    user, _ = new_player()
    viewer = staff("accounts.view_selfexclusion")
    assert b"Start a self-exclusion" not in viewer.get("/admin/accounts/selfexclusion/").content
    assert viewer.get(START).status_code == 403
    assert start_form(viewer, user).status_code == 403
    support = staff("accounts.view_selfexclusion", "accounts.add_selfexclusion", username="support-2")
    assert start_form(support, user).status_code == 302
