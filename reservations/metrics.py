"""Prometheus counters of reservation outcomes. The expiry rate (expired / all ended) above 1%
says the buy-in timeouts need tuning."""

from __future__ import annotations

from prometheus_client import Counter

RESERVATIONS_TOTAL = Counter(
    "balance_reservations_total",
    "Reservations that left pending, by outcome.",
    ["outcome"],
)
OUTCOMES = ("committed", "released", "expired")
for _outcome in OUTCOMES:  # exported at zero from the start, so rate() works before the first event
    RESERVATIONS_TOTAL.labels(outcome=_outcome)


def reservation_outcome_count(outcome: str) -> None:
    """Count ``outcome``: call it once the transaction that ended the reservation has committed."""
    RESERVATIONS_TOTAL.labels(outcome=outcome).inc()
