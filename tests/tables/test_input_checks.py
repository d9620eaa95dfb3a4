"""hand_settle's own checks of a hand id, and payouts left out (everything went to the rake)."""

import pytest

from balance_project.errors import ApplicationError
from tables.models import Hand
from tables.services import hand_settle
from tests.tables.helpers import books_problems, new_key, new_player, open_table, seat_chips
from tests.tables.test_services import buy_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("hand_id", ["", "   ", "x" * 129, "h\n1", 7, None])
def test_a_bad_hand_id_is_invalid_request(hand_id):
    table = open_table()
    user, _ = new_player(funded=100)
    buy_in(user, table, 50)
    with pytest.raises(ApplicationError) as refused:
        hand_settle(
            client="poker",
            idempotency_key=new_key(),
            table_id=table,
            hand_id=hand_id,
            contributions={user: 5},
            payouts=None,
            rake=5,
        )
    assert (refused.value.code, refused.value.details["field"]) == ("invalid_request", "hand_id")
    assert not Hand.objects.exists()


def test_a_hand_without_payouts_sends_every_contribution_to_the_rake():
    table = open_table()
    user, _ = new_player(funded=100)
    buy_in(user, table, 50)
    hand_settle(
        client="poker",
        idempotency_key=new_key(),
        table_id=table,
        hand_id="h1",
        contributions={user: 5},
        payouts=None,
        rake=5,
    )
    assert seat_chips(table, user) == 45
    assert books_problems() == []
