-- The reservations' part of the PostgreSQL hot path (see ledger/hot_path.py): reserve, commit,
-- release, with the seating helpers they share with tables/sql. The same rules, lock order
-- (tables -> seats -> reservations -> accounts) and refusals as reservations/services.py and
-- tables/seating.py.
--
-- This file is the state of migration reservations/0003: change a function with a new file and migration.

-- tables.seating.table_lock
CREATE OR REPLACE FUNCTION balance_table_lock(p_table_id text) RETURNS tables_table
LANGUAGE plpgsql AS $$
DECLARE
    v_table tables_table;
BEGIN
    SELECT * INTO v_table FROM tables_table WHERE table_id = p_table_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM balance_refuse('table_not_found', format('table %s does not exist', p_table_id),
                               jsonb_build_object('table_id', p_table_id));
    END IF;
    RETURN v_table;
END
$$;

-- tables.seating.table_require_open
CREATE OR REPLACE FUNCTION balance_table_require_open(p_table tables_table) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_table.status <> 'open' THEN
        PERFORM balance_refuse('table_closed', format('table %s is closed', p_table.table_id),
                               jsonb_build_object('table_id', p_table.table_id));
    END IF;
END
$$;

-- tables.seating.wallet_for (not locked)
CREATE OR REPLACE FUNCTION balance_wallet_for(p_user_id text, p_currency text) RETURNS accounts_account
LANGUAGE plpgsql AS $$
DECLARE
    v_wallet accounts_account;
    v_others text[];
BEGIN
    SELECT * INTO v_wallet FROM accounts_account
    WHERE kind = 'user' AND owner_ref = p_user_id AND currency = p_currency;
    IF FOUND THEN
        RETURN v_wallet;
    END IF;
    v_others := ARRAY(SELECT currency FROM accounts_account WHERE kind = 'user' AND owner_ref = p_user_id
                      ORDER BY currency COLLATE "C");
    IF cardinality(v_others) > 0 THEN
        PERFORM balance_refuse('currency_mismatch',
                               format('the table plays in %s; %s has wallets in %s', p_currency, p_user_id,
                                      array_to_string(v_others, ', ')),
                               jsonb_build_object('user_id', p_user_id, 'table_currency', p_currency,
                                                  'wallet_currencies', to_jsonb(v_others)));
    END IF;
    PERFORM balance_refuse('account_not_found', format('%s has no %s wallet', p_user_id, p_currency),
                           jsonb_build_object('user_id', p_user_id, 'currency', p_currency));
    RETURN NULL;
END
$$;

-- tables.seating.seat_lock_or_open: the player's active seat, locked, or a new one with a new seat account.
CREATE OR REPLACE FUNCTION balance_seat_lock_or_open(p_table tables_table, p_user_id text) RETURNS tables_seat
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_seat tables_seat;
    v_account_id bigint;
BEGIN
    SELECT * INTO v_seat FROM tables_seat
    WHERE table_id = p_table.id AND user_id = p_user_id AND status = 'active' FOR NO KEY UPDATE;
    IF FOUND THEN
        RETURN v_seat;
    END IF;
    INSERT INTO accounts_account (kind, owner_ref, system_code, shard, currency, balance, held, allow_negative,
                                  status, version, entry_seq, chain_head, created_at, updated_at)
    VALUES ('seat', p_user_id, '', 0, p_table.currency, 0, 0, false, 'active', 0, 0, '', v_now, v_now)
    RETURNING id INTO v_account_id;
    INSERT INTO tables_seat (table_id, user_id, account_id, status, opened_at, left_at)
    VALUES (p_table.id, p_user_id, v_account_id, 'active', v_now, NULL)
    RETURNING * INTO v_seat;
    RETURN v_seat;
END
$$;

-- reservations.services._require_pending
CREATE OR REPLACE FUNCTION balance_reservation_require_pending(p_reservation reservations_reservation)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_details jsonb := jsonb_build_object('reservation_id', p_reservation.id, 'status', p_reservation.status);
BEGIN
    IF p_reservation.status = 'expired' THEN
        PERFORM balance_refuse('reservation_expired', format('reservation %s has expired', p_reservation.id),
                               v_details);
    ELSIF p_reservation.status <> 'pending' THEN
        PERFORM balance_refuse('reservation_not_pending',
                               format('reservation %s is %s, not pending', p_reservation.id, p_reservation.status),
                               v_details);
    ELSIF p_reservation.expires_at <= clock_timestamp() THEN
        PERFORM balance_refuse('reservation_expired', format('reservation %s has expired', p_reservation.id),
                               v_details || jsonb_build_object('expires_at',
                                                               balance_timestamp(p_reservation.expires_at)));
    END IF;
END
$$;

-- reservations.services._reservation_lock (without its table)
CREATE OR REPLACE FUNCTION balance_reservation_lock(p_reservation_id bigint) RETURNS reservations_reservation
LANGUAGE plpgsql AS $$
DECLARE
    v_reservation reservations_reservation;
BEGIN
    SELECT * INTO v_reservation FROM reservations_reservation WHERE id = p_reservation_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM balance_refuse('reservation_not_found', format('reservation %s does not exist', p_reservation_id),
                               jsonb_build_object('reservation_id', p_reservation_id));
    END IF;
    RETURN v_reservation;
END
$$;

-- reservations.services._end: a transition out of pending with its audit event.
CREATE OR REPLACE FUNCTION balance_reservation_end(p_reservation reservations_reservation, p_status text,
                                                   p_actor text, p_reason text, p_amount bigint)
RETURNS reservations_reservation LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_reservation reservations_reservation;
BEGIN
    UPDATE reservations_reservation
    SET status = p_status, committed_amount = p_reservation.committed_amount, seat_id = p_reservation.seat_id,
        transaction_id = p_reservation.transaction_id, ended_at = v_now, ended_by = left(p_actor, 128),
        end_reason = left(p_reason, 255), updated_at = v_now
    WHERE id = p_reservation.id
    RETURNING * INTO v_reservation;
    INSERT INTO reservations_reservationevent (reservation_id, kind, from_status, to_status, amount, actor, reason,
                                               created_at)
    VALUES (p_reservation.id, p_status, p_reservation.status, p_status, p_amount, left(p_actor, 128),
            left(p_reason, 255), v_now);
    RETURN v_reservation;
END
$$;

-- reservations.services.reservation_hold: the table is locked by the caller; so is the wallet
-- when p_wallet_id is given.
CREATE OR REPLACE FUNCTION balance_reservation_hold(p_table tables_table, p_user_id text, p_amount bigint,
                                                    p_ttl_seconds integer, p_actor text, p_wallet_id bigint)
RETURNS reservations_reservation LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_wallet_id bigint := p_wallet_id;
    v_reservation reservations_reservation;
BEGIN
    IF p_table.status <> 'open' THEN
        PERFORM balance_table_require_open(p_table);
    END IF;
    IF v_wallet_id IS NULL THEN
        v_wallet_id := (balance_wallet_for(p_user_id, p_table.currency)).id;
    END IF;
    PERFORM balance_hold(v_wallet_id, p_amount);
    v_now := clock_timestamp();
    INSERT INTO reservations_reservation (account_id, table_id, user_id, currency, amount, committed_amount, status,
                                          expires_at, seat_id, transaction_id, created_by, ended_at, ended_by,
                                          end_reason, created_at, updated_at)
    VALUES (v_wallet_id, p_table.id, p_user_id, p_table.currency, p_amount, 0, 'pending',
            v_now + make_interval(secs => p_ttl_seconds), NULL, NULL, p_actor, NULL, '', '', v_now, v_now)
    RETURNING * INTO v_reservation;
    INSERT INTO reservations_reservationevent (reservation_id, kind, from_status, to_status, amount, actor, reason,
                                               created_at)
    VALUES (v_reservation.id, 'reserved', '', 'pending', p_amount, p_actor, format('ttl %ss', p_ttl_seconds), v_now);
    RETURN v_reservation;
END
$$;

-- reservations.services.reservation_commit_locked: the caller holds the table, the seat, the
-- reservation and both accounts. Answers the posting with the rows it changed.
CREATE OR REPLACE FUNCTION balance_reservation_commit_locked(p_reservation reservations_reservation,
                                                             p_table tables_table, p_seat tables_seat,
                                                             p_amount bigint, p_actor text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_committed bigint := COALESCE(p_amount, p_reservation.amount);
    v_released bigint;
    v_posted jsonb;
    v_table tables_table;
    v_reservation reservations_reservation := p_reservation;
BEGIN
    IF v_committed > p_reservation.amount THEN
        PERFORM balance_refuse('insufficient_funds',
                               format('reservation %s holds %s, %s requested', p_reservation.id, p_reservation.amount,
                                      v_committed),
                               jsonb_build_object('reservation_id', p_reservation.id, 'held', p_reservation.amount,
                                                  'requested', v_committed));
    END IF;
    v_released := p_reservation.amount - v_committed;
    v_posted := balance_post('buy_in', p_actor,
                             jsonb_build_object('table_id', p_table.table_id, 'user_id', p_reservation.user_id,
                                                'reservation_id', p_reservation.id, 'seat_id', p_seat.id,
                                                'released', v_released),
                             ARRAY[p_reservation.account_id, p_seat.account_id], ARRAY[-v_committed, v_committed],
                             p_reservation.account_id, -p_reservation.amount);
    UPDATE tables_table SET chips = chips + v_committed, updated_at = clock_timestamp()
    WHERE id = p_table.id RETURNING * INTO v_table;
    v_reservation.committed_amount := v_committed;
    v_reservation.seat_id := p_seat.id;
    v_reservation.transaction_id := (v_posted -> 'transaction' ->> 'id')::bigint;
    v_reservation := balance_reservation_end(v_reservation, 'committed', p_actor,
                                             format('committed %s, released %s', v_committed, v_released),
                                             v_committed);
    RETURN v_posted || jsonb_build_object(
        'reservation', to_jsonb(v_reservation), 'table', to_jsonb(v_table), 'seat', to_jsonb(p_seat),
        'accounts', balance_accounts_json(ARRAY[p_reservation.account_id, p_seat.account_id]));
END
$$;

-- reservations.services.reservation_reserve (inside its idempotency transaction)
CREATE OR REPLACE FUNCTION balance_reserve(p_table_id text, p_user_id text, p_amount bigint, p_ttl_seconds integer,
                                           p_actor text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_table tables_table := balance_table_lock(p_table_id);
    v_reservation reservations_reservation;
BEGIN
    v_reservation := balance_reservation_hold(v_table, p_user_id, p_amount, p_ttl_seconds, p_actor, NULL);
    RETURN jsonb_build_object('reservation', to_jsonb(v_reservation), 'table', to_jsonb(v_table),
                              'accounts', balance_accounts_json(ARRAY[v_reservation.account_id]));
END
$$;

-- reservations.services.reservation_commit_into_seat
CREATE OR REPLACE FUNCTION balance_reservation_commit(p_reservation_id bigint, p_amount bigint, p_actor text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_found reservations_reservation;
    v_table tables_table;
    v_seat tables_seat;
    v_reservation reservations_reservation;
BEGIN
    SELECT * INTO v_found FROM reservations_reservation WHERE id = p_reservation_id;
    IF NOT FOUND THEN
        PERFORM balance_refuse('reservation_not_found', format('reservation %s does not exist', p_reservation_id),
                               jsonb_build_object('reservation_id', p_reservation_id));
    END IF;
    SELECT * INTO v_table FROM tables_table WHERE id = v_found.table_id FOR NO KEY UPDATE;
    IF v_table.status <> 'open' THEN
        PERFORM balance_reservation_require_pending(balance_reservation_lock(p_reservation_id));
        PERFORM balance_table_require_open(v_table);
    END IF;
    v_seat := balance_seat_lock_or_open(v_table, v_found.user_id);
    v_reservation := balance_reservation_lock(p_reservation_id);
    IF v_reservation.status <> 'pending' OR v_reservation.expires_at <= clock_timestamp() THEN
        PERFORM balance_reservation_require_pending(v_reservation);
    END IF;
    PERFORM balance_accounts_lock(ARRAY[v_reservation.account_id, v_seat.account_id]);
    RETURN balance_reservation_commit_locked(v_reservation, v_table, v_seat, p_amount, p_actor);
END
$$;

-- reservations.services.reservation_release (the reservation's table is read, not locked)
CREATE OR REPLACE FUNCTION balance_reservation_release(p_reservation_id bigint, p_reason text, p_actor text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_reservation reservations_reservation := balance_reservation_lock(p_reservation_id);
BEGIN
    IF v_reservation.status <> 'pending' OR v_reservation.expires_at <= clock_timestamp() THEN
        PERFORM balance_reservation_require_pending(v_reservation);
    END IF;
    PERFORM balance_hold(v_reservation.account_id, -v_reservation.amount);
    v_reservation := balance_reservation_end(v_reservation, 'released', p_actor, p_reason, v_reservation.amount);
    RETURN jsonb_build_object(
        'reservation', to_jsonb(v_reservation),
        'table', (SELECT to_jsonb(t) FROM tables_table AS t WHERE t.id = v_reservation.table_id),
        'accounts', balance_accounts_json(ARRAY[v_reservation.account_id]));
END
$$;
