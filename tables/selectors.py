"""Read-only table queries. CONTRACT STUB: signatures fixed."""
from __future__ import annotations

from typing import Any


def table_get(*, table_id: str) -> dict[str, Any]:
    """-> {"table": table_result}; table_not_found if unknown."""
    raise NotImplementedError
