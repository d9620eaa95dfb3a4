#!/usr/bin/env node
// A poker table session against the balance service over gRPC (balance.v1), as the poker service
// would run it: open a table, two players buy in (join their seats), one hand is settled, both cash
// out (leave their seats), the table closes. Checks every figure and exits non-zero on any failure.
//
//   BALANCE_GRPC_TARGET=127.0.0.1:50051 BALANCE_GRPC_TOKEN=bal_... PLAYERS=alice,bob node table_session.js
//
// The players need funded wallets in CURRENCY (default EUR). Amounts are int64 minor units: they are
// read as strings (longs: String) and compared as BigInt, never as floating-point numbers.
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO = path.resolve(__dirname, '../../proto/balance/v1/balance.proto');
const target = process.env.BALANCE_GRPC_TARGET || '127.0.0.1:50051';
const token = process.env.BALANCE_GRPC_TOKEN;
const players = (process.env.PLAYERS || '').split(',').map((p) => p.trim()).filter(Boolean);
const currency = process.env.CURRENCY || 'EUR';
const tableId = process.env.TABLE_ID || `node-table-${Date.now()}`;
const DEADLINE_MS = 5000;

const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true });
const { BalanceService } = grpc.loadPackageDefinition(definition).balance.v1;
const client = new BalanceService(target, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
metadata.add('authorization', `Bearer ${token}`);

// Keys follow the documented shape {operation}:{tableId}:{userId}:{timestamp}; a retry reuses its key.
let lastStamp = 0;
function idempotencyKey(operation, userId = '') {
  lastStamp = Math.max(Date.now(), lastStamp + 1);
  return `${operation}:${tableId}:${userId}:${lastStamp}`;
}

function call(method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: Date.now() + DEADLINE_MS }, (error, response) => {
      if (error) {
        error.message = `${method} failed: ${grpc.status[error.code]} ${error.details}`;
        reject(error);
      } else {
        resolve(response);
      }
    });
  });
}

function expect(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

async function walletBalance(userId) {
  const answer = await call('GetBalance', { wallet: { user_id: userId, currency } });
  return BigInt(answer.account.balance);
}

async function main() {
  expect(token, 'BALANCE_GRPC_TOKEN is set');
  expect(players.length === 2, 'PLAYERS names two players');
  const [alice, bob] = players;
  const before = { [alice]: await walletBalance(alice), [bob]: await walletBalance(bob) };

  const opened = await call('OpenTable', { idempotency_key: idempotencyKey('open_table'), table_id: tableId, currency });
  expect(opened.table.status === 'TABLE_STATUS_OPEN', 'the table is open');
  console.log(`opened ${tableId} (${currency})`);

  for (const userId of players) {
    const request = { idempotency_key: idempotencyKey('buy_in', userId), user_id: userId, table_id: tableId, amount: '1000' };
    const joined = await call('BuyIn', request);
    expect(joined.seat.chips === '1000' && joined.reservation.status === 'RESERVATION_STATUS_COMMITTED',
      `${userId} sits with 1000 chips`);
    const again = await call('BuyIn', request); // a retry with the same key: the same answer, no second buy-in
    expect(again.transaction.id === joined.transaction.id, 'a retried buy-in is answered from its key');
    console.log(`${userId} bought in for 1000 (seat ${joined.seat.id})`);
  }

  try {
    await call('BuyIn', { idempotency_key: idempotencyKey('buy_in', alice), user_id: alice, table_id: tableId, amount: '0' });
    expect(false, 'a zero buy-in is refused');
  } catch (error) {
    expect(error.code === grpc.status.INVALID_ARGUMENT, `a zero buy-in is INVALID_ARGUMENT (${error.message})`);
  }

  const settled = await call('SettleHand', {
    idempotency_key: idempotencyKey('settle_hand', 'hand-1'), table_id: tableId, hand_id: 'hand-1',
    contributions: { [alice]: '200', [bob]: '200' }, payouts: { [alice]: '390' }, rake: '10',
  });
  const chips = Object.fromEntries(settled.table.seats.map((seat) => [seat.user_id, seat.chips]));
  expect(chips[alice] === '1190' && chips[bob] === '800' && settled.table.chips === '1990', 'chips after the hand');
  console.log(`hand-1 settled: ${alice} 1190, ${bob} 800, rake 10`);

  for (const userId of players) {
    const left = await call('CashOut', { idempotency_key: idempotencyKey('cash_out', userId), table_id: tableId,
      user_id: userId, leave: true });
    expect(left.seat.status === 'SEAT_STATUS_LEFT' && left.seat.chips === '0', `${userId} left the seat`);
    console.log(`${userId} cashed out: wallet ${left.account.balance}`);
  }

  const table = (await call('GetTable', { table_id: tableId })).table;
  expect(table.chips === '0' && table.seats.length === 0, 'the table is empty');
  const closed = await call('CloseTable', { idempotency_key: idempotencyKey('close_table'), table_id: tableId });
  expect(closed.table.status === 'TABLE_STATUS_CLOSED', 'the table is closed');

  expect(await walletBalance(alice) === before[alice] + 190n, `${alice} won 190`);
  expect(await walletBalance(bob) === before[bob] - 200n, `${bob} lost 200`);
  console.log('table session OK');
}

main()
  .catch((error) => {
    console.error(error.message || error);
    process.exitCode = 1;
  })
  .finally(() => client.close());
