"""Helpers of the hot-path tests: calls with fresh keys, one scenario run on both paths, and the
normalisation that lets their answers and rows be compared (see test_hot_path_equivalence.py)."""
from __future__ import annotations

import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from balance_project.errors import ApplicationError
from ledger.models import Entry, Transaction
from reservations.models import Reservation, ReservationEvent
from reservations.services import reservation_commit, reservation_release, reservation_reserve
from tables.models import Hand, Seat, Table
from tables.services import hand_settle, seat_cash_out, table_buy_in
from tests.tables.helpers import new_key, new_player, open_table

CLIENT = "poker"



# --- calls, each with a fresh idempotency key ---------------------------------------------------

def reserve(table, user, amount, **kwargs):
    return reservation_reserve(client=CLIENT, idempotency_key=new_key(), user_id=user, table_id=table,
                               amount=amount, **kwargs)


def commit(reservation, amount=None):
    return reservation_commit(client=CLIENT, idempotency_key=new_key(), reservation_id=reservation, amount=amount)


def release(reservation, reason=""):
    return reservation_release(client=CLIENT, idempotency_key=new_key(), reservation_id=reservation, reason=reason)


def buy_in(table, user, amount):
    return table_buy_in(client=CLIENT, idempotency_key=new_key(), user_id=user, table_id=table, amount=amount)


def settle(table, hand_id, contributions, payouts, rake, key=None):
    return hand_settle(client=CLIENT, idempotency_key=key or new_key(), table_id=table, hand_id=hand_id,
                       contributions=contributions, payouts=payouts, rake=rake)


def cash_out(table, user, **kwargs):
    return seat_cash_out(client=CLIENT, idempotency_key=new_key(), table_id=table, user_id=user, **kwargs)


def world():
    """Everything a refused call could have touched (a stricter money_snapshot)."""
    return (list(Account.objects.order_by("pk").values_list("pk", "balance", "held", "status", "version",
                                                            "entry_seq", "chain_head")),
            Transaction.objects.count(), Hand.objects.count(), ReservationEvent.objects.count(),
            list(Reservation.objects.order_by("pk").values_list("pk", "status", "committed_amount")),
            list(Seat.objects.order_by("pk").values_list("pk", "status")),
            list(Table.objects.order_by("pk").values_list("pk", "chips", "status")))


def refusal(code, call, *args, **kwargs):
    """``call``'s refusal ``code`` as {"code", "message", "details"}, once checked that it moved nothing."""
    before = world()
    with pytest.raises(ApplicationError) as err:
        call(*args, **kwargs)
    assert err.value.code == code, err.value
    assert world() == before, f"the refused call ({err.value!r}) changed something"
    return err.value.as_dict()


# --- one scenario on both paths -----------------------------------------------------------------

class Run:
    """One path's run of a scenario: every table and user id carries the run's token."""

    def __init__(self):
        self.token = f"hp{uuid.uuid4().hex[:10]}"

    def table(self, name="t", currency="EUR"):
        return open_table(currency, table_id=f"{self.token}-{name}")

    def player(self, name, funded=1000, currency="EUR"):
        return new_player(funded=funded, currency=currency, user_id=f"{self.token}-{name}")

    def rows(self):
        """What the run wrote: accounts, entries, reservations and their events, seats, tables, hands."""
        mine = self.token
        reservations = Reservation.objects.filter(user_id__startswith=mine).order_by("pk").values(
            "id", "account_id", "amount", "committed_amount", "status", "seat_id", "transaction_id", "created_by",
            "ended_by", "end_reason", "expires_at", "created_at")
        return {
            "accounts": list(Account.objects.filter(owner_ref__startswith=mine).order_by("pk").values(
                "id", "kind", "owner_ref", "currency", "balance", "held", "status", "version", "entry_seq")),
            "entries": list(Entry.objects.filter(account__owner_ref__startswith=mine).order_by("account_id", "seq")
                            .values("account_id", "seq", "transaction_id", "amount", "currency", "balance_after")),
            # The TTL each reservation was given, rather than its times.
            "reservations": [{**{k: v for k, v in row.items() if not k.endswith("_at")},
                              "ttl": round((row["expires_at"] - row["created_at"]).total_seconds())}
                             for row in reservations],
            "events": list(ReservationEvent.objects.filter(reservation__user_id__startswith=mine).order_by("pk")
                           .values("reservation_id", "kind", "from_status", "to_status", "amount", "actor", "reason")),
            "seats": list(Seat.objects.filter(user_id__startswith=mine).order_by("pk").values(
                "id", "user_id", "account_id", "status")),
            "tables": list(Table.objects.filter(table_id__startswith=mine).order_by("pk").values(
                "table_id", "currency", "chips", "status")),
            # Not figures_hash: it hashes the run's user ids (and Python computes it for both paths).
            "hands": list(Hand.objects.filter(table__table_id__startswith=mine).order_by("pk").values(
                "hand_id", "rake", "transaction_id", "response", "settled_by")),
        }


ID_KEYS = {"account_id": "account", "seat_id": "seat", "transaction_id": "tx", "reservation_id": "reservation"}
ID_OWNERS = {"account": "account", "accounts": "account", "seat": "seat", "seats": "seat", "transaction": "tx",
             "reservation": "reservation", "reservations": "reservation"}  # the kind of an "id" is its owner's
MESSAGE_IDS = re.compile(r"\b(account|reservation) (\d+)\b")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")  # as chain.format_timestamp writes it


def normalised(value, token):
    ids: dict[str, set[int]] = {}
    rank: dict[str, dict[int, str]] = {}

    def walk(value, owner, rewrite):
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                kind = ID_KEYS.get(key) or (ID_OWNERS.get(owner, f"?{owner}") if key == "id" else None)
                if kind and isinstance(item, int):
                    ids.setdefault(kind, set()).add(item)
                    item = rank[kind][item] if rewrite else item
                elif key.endswith("_at") and isinstance(item, str) and TIMESTAMP.match(item):
                    item = "<time>"  # a time in another format stays, to show
                else:
                    item = walk(item, key, rewrite)
                out[key.replace(token, "<run>")] = item
            return out
        if isinstance(value, list):
            return [walk(item, owner, rewrite) for item in value]
        if isinstance(value, str):
            for kind, number in MESSAGE_IDS.findall(value):
                ids.setdefault(kind, set()).add(int(number))
            if rewrite:
                value = MESSAGE_IDS.sub(lambda m: rank[m[1]][int(m[2])], value)
            return value.replace(token, "<run>")
        return value

    walk(value, None, rewrite=False)
    rank.update({kind: {v: f"{kind}#{i}" for i, v in enumerate(sorted(found))} for kind, found in ids.items()})
    return walk(value, None, rewrite=True)


def differences(orm, hot, path=""):
    """Where two normalised outcomes differ, one "path: ORM value != hot value" line each."""
    if isinstance(orm, dict) and isinstance(hot, dict):
        return [line for key in {**orm, **hot}
                for line in differences(orm.get(key, "<absent>"), hot.get(key, "<absent>"), f"{path}.{key}")]
    if isinstance(orm, list) and isinstance(hot, list) and len(orm) == len(hot):
        return [line for i, (a, b) in enumerate(zip(orm, hot)) for line in differences(a, b, f"{path}[{i}]")]
    return [] if orm == hot else [f"{path}: ORM {orm!r} != hot {hot!r}"]


def same_on_both_paths(settings, scenario):
    """Run ``scenario(run)`` on the ORM path, then on the hot path; check that the answers it returns
    and the rows it wrote are the same, normalised; return the ORM path's."""
    outcomes = []
    for hot in (False, True):
        settings.PG_HOT_PATH = hot
        run = Run()
        with CaptureQueriesContext(connection) as queries:
            answers = scenario(run)
        called = any(re.search(r"SELECT balance_\w+\(", q["sql"]) for q in queries.captured_queries)
        assert called == hot, f"PG_HOT_PATH={hot}, yet the PL/pgSQL functions were{'' if called else ' not'} called"
        outcomes.append(normalised({"answers": answers, "rows": run.rows()}, run.token))
    found = differences(*outcomes)
    assert not found, "the paths differ:\n" + "\n".join(found)
    return outcomes[0]
