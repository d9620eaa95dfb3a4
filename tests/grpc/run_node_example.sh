#!/usr/bin/env bash
# Run the Node.js example (examples/node) against a real gRPC sidecar on a fresh database:
# migrate a new SQLite database in a temporary directory, create a service token and two funded
# wallets, start `manage.py grpcserver` on a free port, run the example, stop the server with SIGTERM.
# Exits with the example's status. Used by `make example-node` (and CI).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PY:-.venv/bin/python}"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A fresh embedded database of its own, whatever the caller's environment points at.
export BALANCE_VAR_DIR="$work/var"
unset DATABASE_URL REDIS_URL CELERY_BROKER_URL
"$PY" manage.py migrate --noinput -v 0

token="$("$PY" manage.py create_api_key --client node-example \
    --scopes accounts:read,reservations:write,tables:write 2>/dev/null)"
stamp="$(date +%s)"
alice="node-alice-$stamp"
bob="node-bob-$stamp"
"$PY" manage.py shell -v 0 -c "
from accounts.services import account_deposit, account_open
for user in ('$alice', '$bob'):
    wallet = account_open(client='setup', idempotency_key='open-' + user, owner_ref=user, currency='EUR')
    account_deposit(client='setup', idempotency_key='fund-' + user, account_id=wallet['account']['id'], amount=5000)
"

if [[ ! -d examples/node/node_modules ]]; then
    (cd examples/node && npm ci --no-audit --no-fund --loglevel=error)
fi

"$PY" manage.py grpcserver --bind 127.0.0.1:0 --metrics-port 0 --max-workers 4 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
address=""
for _ in $(seq 1 100); do
    address="$(sed -n 's/^gRPC server listening on \(.*\)$/\1/p' "$work/server.out")"
    [[ -n "$address" ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z "$address" ]]; then
    echo "the gRPC server did not start:" >&2
    cat "$work/server.err" >&2
    exit 1
fi
echo "gRPC server on $address"

status=0
BALANCE_GRPC_TARGET="$address" BALANCE_GRPC_TOKEN="$token" PLAYERS="$alice,$bob" \
    node examples/node/table_session.js || status=$?

kill -TERM "$server_pid"
wait "$server_pid" || { echo "the gRPC server did not stop cleanly" >&2; cat "$work/server.err" >&2; status=1; }
server_pid=""
if [[ $status -ne 0 ]]; then
    echo "node example FAILED (status $status); server log:" >&2
    tail -n 40 "$work/server.err" >&2
fi
exit $status
