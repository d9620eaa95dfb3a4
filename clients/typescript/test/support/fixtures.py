"""Test fixtures for the TypeScript client's tests, made through the HTTP API in process.

Run by test/support/sidecar.ts as `manage.py shell -c` on the sidecar's own database, with the spec
as JSON in $BALANCE_FIXTURES: {"token": KEY, "wallets": [{"user", "currency", "amount"}],
"freeze": [user, ...], "close": [user, ...]}. Amounts are decimal strings (int64 exactly).
Prints {"accounts": {user: id}}.
The HTTP API (the cashier's contract) rather than the services' Python signatures, so these tests
follow the same public contracts the poker and cashier sides use.
"""

import json
import os
import sys

from django.test import Client

spec = json.loads(os.environ["BALANCE_FIXTURES"])
http = Client()
auth = {"Authorization": f"Bearer {spec['token']}"}


def post(path, key, body=None):
    response = http.post(
        f"/api/v1/{path}",
        data=json.dumps(body or {}),
        content_type="application/json",
        headers={**auth, "Idempotency-Key": key},
    )
    if response.status_code >= 300:
        sys.exit(f"fixture POST {path} failed: {response.status_code} {response.content.decode()}")
    return response.json()


accounts = {}
for wallet in spec.get("wallets", []):
    user, currency = wallet["user"], wallet.get("currency", "EUR")
    opened = post("accounts", f"open-{user}-{currency}", {"owner_ref": user, "currency": currency})
    account_id = opened["account"]["id"]
    if int(wallet.get("amount", "0")):
        post(f"accounts/{account_id}/deposit", f"fund-{user}-{currency}", {"amount": wallet["amount"]})
    accounts[user] = account_id
for user in spec.get("freeze", []):
    post(f"accounts/{accounts[user]}/freeze", f"freeze-{user}")
for user in spec.get("close", []):
    post(f"accounts/{accounts[user]}/close", f"close-{user}")
print(json.dumps({"accounts": accounts}))
