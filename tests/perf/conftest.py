"""Fixtures of the performance-path tests."""

import pytest


@pytest.fixture
def a_rake_shard_per_table(settings):
    """So many rake shards that each table of a test gets its own, created by its first rake on
    either path, so a table's rake entries do not depend on which path ran first."""
    settings.RAKE_ACCOUNT_SHARDS = 30_000
