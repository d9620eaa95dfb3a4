import random

import pytest

from accounts.models import Account
from tables.models import Hand
from tables.services import hand_settle, seat_cash_out, table_buy_in, table_close
from tests.tables.helpers import account, books_problems, new_player, open_table, seat_chips, table_row

pytestmark = pytest.mark.django_db


def random_hand(rng, chips):
    """Contributions within each seat's chips, the pot (less a 5% rake, capped) split among winners."""
    players = [user for user, stack in chips.items() if stack > 0]
    if len(players) < 2:
        return None
    players = rng.sample(players, rng.randint(2, len(players)))
    contributions = {user: rng.randint(0, chips[user]) for user in players}
    pot = sum(contributions.values())
    rake = min(pot * 5 // 100, 300)
    winners = rng.sample(players, rng.randint(1, min(2, len(players))))
    payouts = dict.fromkeys(winners, 0)
    left = pot - rake
    for user in winners[:-1]:
        payouts[user] = rng.randint(0, left)
        left -= payouts[user]
    payouts[winners[-1]] += left
    return contributions, payouts, rake


def test_six_players_two_hundred_hands_and_everyone_cashes_out(key):
    rng = random.Random(20240611)
    table = open_table()
    players = [new_player(funded=10_000) for _ in range(6)]
    start = sum(account(wallet).balance for _, wallet in players)
    for user, _ in players:
        table_buy_in(
            client="poker", idempotency_key=key(), user_id=user, table_id=table, amount=rng.randint(1_000, 3_000)
        )

    hands = 0
    while hands < 200:
        chips = {user: seat_chips(table, user) for user, _ in players}
        if rng.random() < 0.05:  # an occasional top-up
            user = rng.choice(players)[0]
            table_buy_in(
                client="poker", idempotency_key=key(), user_id=user, table_id=table, amount=rng.randint(1, 500)
            )
            continue
        figures = random_hand(rng, chips)
        if figures is None:
            break
        contributions, payouts, rake = figures
        hand_settle(
            client="poker",
            idempotency_key=key(),
            table_id=table,
            hand_id=f"hand-{hands}",
            contributions=contributions,
            payouts=payouts,
            rake=rake,
        )
        hands += 1
        assert table_row(table).chips == sum(seat_chips(table, user) for user, _ in players)
    assert hands == 200 and Hand.objects.filter(table__table_id=table).count() == 200

    for user, _ in players:
        seat_cash_out(client="poker", idempotency_key=key(), table_id=table, user_id=user, leave=True)
    assert table_close(client="poker", idempotency_key=key(), table_id=table)["table"]["status"] == "closed"

    rake_account = Account.objects.get(kind="system", system_code="rake", currency="EUR")
    wallets = sum(account(wallet).balance for _, wallet in players)
    assert rake_account.balance > 0
    assert wallets + rake_account.balance == start
    assert all(account(wallet).held == 0 for _, wallet in players)
    assert not Account.objects.filter(kind="seat").exclude(balance=0).exists()
    assert not Account.objects.filter(kind="seat").exclude(status="closed").exists()
    assert books_problems() == []
