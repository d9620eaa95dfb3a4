"""Random sequences of deposit / reserve / commit / release / expire / buy-in / settle / cash-out /
close across several players and tables. After every step the books must hold: all balances sum to
zero (the external account is the counterpart of deposits), nothing is negative, each wallet's hold
is the sum of its pending reservations, each table's chips are the sum of its seats, and the ledger
verifies. Refusals must be the expected codes, and change nothing."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from accounts.models import Account
from accounts.services import account_deposit
from balance_project.errors import ApplicationError
from reservations.models import Reservation
from reservations.services import (
    reservation_commit,
    reservation_expire_overdue,
    reservation_release,
    reservation_reserve,
)
from tables.models import Seat
from tables.services import hand_settle, seat_cash_out, table_buy_in, table_close
from tests.tables.helpers import (
    books_problems,
    ledger_problems,
    money_snapshot,
    new_key,
    new_player,
    open_table,
    seat_chips,
)

TABLES = ["tbl-a", "tbl-b", "tbl-usd"]
PLAYERS = ["p0", "p1", "p2", "p3"]  # p3 has only a USD wallet
amounts = st.integers(min_value=1, max_value=1500)
picks = st.integers(min_value=0, max_value=10_000)
# What the calls did over the whole run, so the test can tell a run that exercised nothing.
OUTCOMES: Counter = Counter()


class BuyInBooks(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        # Each example runs in a savepoint that teardown rolls back: the next starts from nothing.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        open_table("EUR", "tbl-a")
        open_table("EUR", "tbl-b")
        open_table("USD", "tbl-usd")
        self.wallets = {}
        for user in PLAYERS:
            self.wallets[user] = new_player(funded=2000, currency="USD" if user == "p3" else "EUR", user_id=user)[1]
        self.deposited = 2000 * len(PLAYERS)
        self.hand_no = 0

    def teardown(self):
        # The full ledger verification (chains, journal, seals) once per example, after its last
        # step; the money's own invariants (books_hold) after every step.
        try:
            assert ledger_problems() == []
        finally:
            transaction.set_rollback(True)
            self._atomic.__exit__(None, None, None)

    def attempt(self, allowed, call, unchanged=True, **kwargs):
        """Run a service call; a refusal must be one of ``allowed`` and (unless told otherwise)
        change no balance or hold."""
        before = money_snapshot()
        try:
            result = call(client="prop", idempotency_key=new_key(), **kwargs)
            OUTCOMES[f"{call.__name__}: done"] += 1
            return result
        except ApplicationError as refusal:
            OUTCOMES[f"{call.__name__}: {refusal.code}"] += 1
            assert refusal.code in allowed, refusal
            assert not unchanged or money_snapshot() == before
            return None

    def pending(self, pick):
        ids = list(Reservation.objects.filter(status="pending").order_by("pk").values_list("pk", flat=True))
        return ids[pick % len(ids)] if ids else None

    @rule(player=st.sampled_from(PLAYERS), amount=amounts)
    def deposit(self, player, amount):
        account_deposit(client="prop", idempotency_key=new_key(), account_id=self.wallets[player], amount=amount)
        self.deposited += amount

    @rule(player=st.sampled_from(PLAYERS), table=st.sampled_from(TABLES), amount=amounts)
    def reserve(self, player, table, amount):
        self.attempt(
            {"insufficient_funds", "currency_mismatch", "table_closed"},
            reservation_reserve,
            user_id=player,
            table_id=table,
            amount=amount,
        )

    @rule(pick=picks, part=st.integers(min_value=0, max_value=100))
    def commit(self, pick, part):
        reservation_id = self.pending(pick)
        if reservation_id is None:
            return
        held = Reservation.objects.get(pk=reservation_id).amount
        amount = None if part == 0 else max(1, held * part // 100)
        self.attempt(
            {"table_closed"}, reservation_commit, reservation_id=reservation_id, amount=amount, whole=amount is None
        )

    @rule(pick=picks)
    def commit_too_much(self, pick):
        reservation_id = self.pending(pick)
        if reservation_id is not None:
            held = Reservation.objects.get(pk=reservation_id).amount
            self.attempt({"insufficient_funds"}, reservation_commit, reservation_id=reservation_id, amount=held + 1)

    @rule(pick=picks)
    def release(self, pick):
        reservation_id = self.pending(pick)
        if reservation_id is not None:
            reservation_release(client="prop", idempotency_key=new_key(), reservation_id=reservation_id)

    @rule(pick=picks, swept=st.booleans())
    def expire(self, pick, swept):
        reservation_id = self.pending(pick)
        if reservation_id is None:
            return
        Reservation.objects.filter(pk=reservation_id).update(expires_at=timezone.now() - timedelta(seconds=1))
        if swept:
            assert reservation_expire_overdue() == 1
        else:
            # Refused, and expired on the spot: the hold goes, so the balances are not "unchanged".
            self.attempt(
                {"reservation_expired"}, reservation_commit, unchanged=False, reservation_id=reservation_id, whole=True
            )
        assert Reservation.objects.get(pk=reservation_id).status == "expired"

    @rule(pick=picks)
    def act_on_an_ended_reservation(self, pick):
        ended = list(Reservation.objects.exclude(status="pending").values_list("pk", flat=True))
        if ended:
            reservation_id = ended[pick % len(ended)]
            if pick % 2:
                call, extra = reservation_commit, {"whole": True}
            else:
                call, extra = reservation_release, {}
            self.attempt(
                {"reservation_not_pending", "reservation_expired"}, call, reservation_id=reservation_id, **extra
            )

    @rule(player=st.sampled_from(PLAYERS), table=st.sampled_from(TABLES), amount=amounts)
    def buy_in(self, player, table, amount):
        self.attempt(
            {"insufficient_funds", "currency_mismatch", "table_closed"},
            table_buy_in,
            user_id=player,
            table_id=table,
            amount=amount,
        )

    def seated(self, table):
        return [
            user
            for user in PLAYERS
            if Seat.objects.filter(table__table_id=table, user_id=user, status="active").exists()
        ]

    @rule(table=st.sampled_from(TABLES), data=st.data())
    def settle(self, table, data):
        stacks = {user: seat_chips(table, user) for user in PLAYERS}
        # Mostly the seated players; now and then anyone (player_not_seated).
        pool = self.seated(table) if data.draw(st.integers(0, 4)) else PLAYERS
        if not pool:
            return
        players = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True))
        contributions = {user: data.draw(st.integers(0, stacks[user] + 5)) for user in players}
        pot = sum(contributions.values())
        rake = data.draw(st.integers(0, pot // 10 + 1))
        winner = data.draw(st.sampled_from(players))
        payouts = {winner: pot - rake} if pot >= rake else {winner: 0}
        self.hand_no += 1
        self.attempt(
            {"player_not_seated", "insufficient_chips", "settlement_invalid", "table_closed"},
            hand_settle,
            table_id=table,
            hand_id=f"hand-{self.hand_no}",
            contributions=contributions,
            payouts=payouts,
            rake=rake,
        )

    @rule(pick=picks, table=st.sampled_from(TABLES), amount=st.none() | amounts, leave=st.booleans())
    def cash_out(self, pick, table, amount, leave):
        pool = self.seated(table) if pick % 5 else PLAYERS
        if not pool:
            return
        player = pool[pick % len(pool)]
        if amount is not None and pick % 3:
            amount = max(1, seat_chips(table, player) * (pick % 100) // 100)
        self.attempt(
            {"player_not_seated", "insufficient_chips", "invalid_request"},
            seat_cash_out,
            table_id=table,
            user_id=player,
            amount=amount,
            leave=leave,
            whole=amount is None and not leave,
        )

    @rule(table=st.sampled_from(TABLES), chance=st.integers(0, 9))
    def close(self, table, chance):
        if chance == 0:  # rarely: a closed table refuses most of the other rules
            self.attempt({"table_not_empty"}, table_close, table_id=table)

    @rule(player=st.sampled_from(PLAYERS), table=st.sampled_from(TABLES), amount=st.integers(-1000, -1))
    def negative_numbers(self, player, table, amount):
        self.attempt({"invalid_amount"}, reservation_reserve, user_id=player, table_id=table, amount=amount)
        self.attempt({"invalid_amount"}, table_buy_in, user_id=player, table_id=table, amount=amount)
        self.attempt(
            {"invalid_amount"},
            hand_settle,
            table_id=table,
            hand_id="neg",
            contributions={player: amount},
            payouts={},
            rake=0,
        )

    @invariant()
    def books_hold(self):
        assert books_problems(verify_ledger=False) == []
        held_by_players = (
            Account.objects.exclude(kind="system", system_code="external").aggregate(total=Sum("balance"))["total"] or 0
        )
        assert held_by_players == self.deposited


@pytest.mark.django_db
def test_random_operations_keep_the_books():
    OUTCOMES.clear()
    run_state_machine_as_test(
        BuyInBooks,
        settings=settings(
            max_examples=40,
            stateful_step_count=40,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    print(dict(sorted(OUTCOMES.items())))
    for done in ("reservation_reserve", "reservation_commit", "table_buy_in", "hand_settle", "seat_cash_out"):
        assert OUTCOMES[f"{done}: done"] > 0, OUTCOMES
