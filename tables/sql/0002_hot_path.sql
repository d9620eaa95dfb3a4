-- The tables' part of the PostgreSQL hot path (see ledger/hot_path.py): buy-in, hand settlement,
-- cash-out. The same rules, lock order (tables -> seats -> reservations -> accounts) and refusals
-- as tables/services.py.
--
-- This file is the state of migration tables/0002: change a function with a new file and migration.

-- The table's active seats with their chips, in seat order: what table_result shows.
CREATE OR REPLACE FUNCTION balance_table_seats_json(p_table_pk bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(jsonb_agg(to_jsonb(s) || jsonb_build_object('chips', a.balance) ORDER BY s.id), '[]'::jsonb)
    FROM tables_seat AS s JOIN accounts_account AS a ON a.id = s.account_id
    WHERE s.table_id = p_table_pk AND s.status = 'active'
$$;

-- tables.services.table_buy_in: reserve and commit in one call.
CREATE OR REPLACE FUNCTION balance_buy_in(p_table_id text, p_user_id text, p_amount bigint, p_ttl_seconds integer,
                                          p_actor text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_table tables_table := balance_table_lock(p_table_id);
    v_seat tables_seat;
    v_wallet accounts_account;
    v_reservation reservations_reservation;
BEGIN
    IF v_table.status <> 'open' THEN
        PERFORM balance_table_require_open(v_table);
    END IF;
    v_seat := balance_seat_lock_or_open(v_table, p_user_id);
    v_wallet := balance_wallet_for(p_user_id, v_table.currency);
    PERFORM balance_accounts_lock(ARRAY[v_wallet.id, v_seat.account_id]);
    v_reservation := balance_reservation_hold(v_table, p_user_id, p_amount, p_ttl_seconds, p_actor, v_wallet.id);
    RETURN balance_reservation_commit_locked(v_reservation, v_table, v_seat, NULL, p_actor);
END
$$;

-- tables.services.hand_settle. p_players is sorted; p_contributions and p_payouts are its amounts
-- (0 where none). Answers {"settled": stored answer} for a hand already settled with the same
-- figures; else the posting (if any nets or rake) with the table and its seats.
CREATE OR REPLACE FUNCTION balance_hand_settle(p_table_id text, p_hand_id text, p_figures_hash text,
                                               p_players text[], p_contributions bigint[], p_payouts bigint[],
                                               p_rake bigint, p_rake_shards integer, p_metadata jsonb,
                                               p_actor text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_table tables_table := balance_table_lock(p_table_id);
    v_hand tables_hand;
    v_seat tables_seat;
    v_seats jsonb := '{}'::jsonb;
    v_missing text[];
    v_rake_id bigint;
    v_shard integer;
    v_account_ids bigint[] := '{}';
    v_account accounts_account;
    v_short jsonb := '{}'::jsonb;
    v_chips jsonb := '{}'::jsonb;
    v_net bigint;
    v_leg_ids bigint[] := '{}';
    v_leg_amounts bigint[] := '{}';
    v_posted jsonb := '{}'::jsonb;
    i integer;
BEGIN
    SELECT * INTO v_hand FROM tables_hand WHERE table_id = v_table.id AND hand_id = p_hand_id;
    IF FOUND THEN
        IF v_hand.figures_hash <> p_figures_hash THEN
            PERFORM balance_refuse('hand_conflict', format('hand %s was already settled with other figures', p_hand_id),
                                   jsonb_build_object('table_id', p_table_id, 'hand_id', p_hand_id));
        END IF;
        RETURN jsonb_build_object('settled', v_hand.response);
    END IF;
    IF v_table.status <> 'open' THEN
        PERFORM balance_table_require_open(v_table);
    END IF;

    FOR v_seat IN SELECT * FROM tables_seat
                  WHERE table_id = v_table.id AND user_id = ANY (p_players) AND status = 'active'
                  ORDER BY id FOR NO KEY UPDATE LOOP
        v_seats := v_seats || jsonb_build_object(v_seat.user_id, v_seat.account_id);
        v_account_ids := v_account_ids || v_seat.account_id;
    END LOOP;
    IF cardinality(v_account_ids) < cardinality(p_players) THEN
        v_missing := '{}';
        FOR i IN 1 .. cardinality(p_players) LOOP
            IF NOT v_seats ? p_players[i] THEN
                v_missing := v_missing || p_players[i];
            END IF;
        END LOOP;
        PERFORM balance_refuse('player_not_seated',
                               format('not seated at table %s: %s', v_table.table_id, array_to_string(v_missing, ', ')),
                               jsonb_build_object('table_id', v_table.table_id, 'user_ids', to_jsonb(v_missing)));
    END IF;

    -- The table's rake shard (tables.services.rake_shard) is created on its first rake in a currency:
    -- the newest account, so locking it with the seats' accounts in ascending id keeps the order.
    IF p_rake > 0 THEN
        v_shard := v_table.id % p_rake_shards;
        SELECT id INTO v_rake_id FROM accounts_account
        WHERE kind = 'system' AND system_code = 'rake' AND currency = v_table.currency AND shard = v_shard;
        IF NOT FOUND THEN
            INSERT INTO accounts_account (kind, owner_ref, system_code, shard, currency, balance, held,
                                          allow_negative, status, version, entry_seq, chain_head, created_at,
                                          updated_at)
            VALUES ('system', '', 'rake', v_shard, v_table.currency, 0, 0, false, 'active', 0, 0, '',
                    clock_timestamp(), clock_timestamp())
            ON CONFLICT (system_code, currency, shard) WHERE kind = 'system' DO NOTHING;
            SELECT id INTO v_rake_id FROM accounts_account
            WHERE kind = 'system' AND system_code = 'rake' AND currency = v_table.currency AND shard = v_shard;
        END IF;
        v_account_ids := v_account_ids || v_rake_id;
    END IF;
    -- Lock the seats' accounts and the rake shard (ascending id), reading the seats' chips.
    FOR v_account IN SELECT * FROM accounts_account WHERE id = ANY (v_account_ids) ORDER BY id FOR UPDATE LOOP
        v_chips := v_chips || jsonb_build_object(v_account.id::text, v_account.balance);
    END LOOP;

    FOR i IN 1 .. cardinality(p_players) LOOP
        IF p_contributions[i] > (v_chips ->> (v_seats ->> p_players[i]))::bigint THEN
            v_short := v_short || jsonb_build_object(p_players[i], jsonb_build_object(
                'contribution', p_contributions[i], 'chips', (v_chips ->> (v_seats ->> p_players[i]))::bigint));
        END IF;
    END LOOP;
    IF v_short <> '{}'::jsonb THEN
        PERFORM balance_refuse('insufficient_chips', 'a contribution exceeds the seat''s chips',
                               jsonb_build_object('table_id', p_table_id, 'hand_id', p_hand_id, 'players', v_short));
    END IF;

    FOR i IN 1 .. cardinality(p_players) LOOP
        v_net := p_payouts[i] - p_contributions[i];
        IF v_net <> 0 THEN
            v_leg_ids := v_leg_ids || (v_seats ->> p_players[i])::bigint;
            v_leg_amounts := v_leg_amounts || v_net;
        END IF;
    END LOOP;
    IF v_rake_id IS NOT NULL THEN
        v_leg_ids := v_leg_ids || v_rake_id;
        v_leg_amounts := v_leg_amounts || p_rake;
    END IF;
    IF cardinality(v_leg_ids) > 0 THEN
        v_posted := balance_post('hand_settlement', p_actor, p_metadata, v_leg_ids, v_leg_amounts);
    END IF;
    UPDATE tables_table SET chips = chips - p_rake, updated_at = clock_timestamp()
    WHERE id = v_table.id RETURNING * INTO v_table;
    RETURN v_posted || jsonb_build_object(
        'table', to_jsonb(v_table), 'seats', balance_table_seats_json(v_table.id),
        'accounts', balance_accounts_json(v_account_ids));
END
$$;

-- Record a settled hand with its first answer (built by the caller from balance_hand_settle's).
CREATE OR REPLACE FUNCTION balance_hand_record(p_table_id text, p_hand_id text, p_figures_hash text, p_rake bigint,
                                               p_transaction_id bigint, p_response jsonb, p_actor text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO tables_hand (table_id, hand_id, figures_hash, rake, transaction_id, response, settled_by, created_at)
    SELECT t.id, p_hand_id, p_figures_hash, p_rake, p_transaction_id, p_response, p_actor, clock_timestamp()
    FROM tables_table AS t WHERE t.table_id = p_table_id
$$;

-- tables.services.seat_cash_out: p_amount NULL cashes out every chip.
CREATE OR REPLACE FUNCTION balance_cash_out(p_table_id text, p_user_id text, p_amount bigint, p_leave boolean,
                                            p_actor text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_table tables_table := balance_table_lock(p_table_id);
    v_seat tables_seat;
    v_wallet_id bigint;
    v_chips bigint;
    v_moved bigint;
    v_posted jsonb := '{}'::jsonb;
BEGIN
    SELECT * INTO v_seat FROM tables_seat
    WHERE table_id = v_table.id AND user_id = p_user_id AND status = 'active' FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM balance_refuse('player_not_seated', format('not seated at table %s: %s', v_table.table_id, p_user_id),
                               jsonb_build_object('table_id', v_table.table_id, 'user_ids', jsonb_build_array(p_user_id)));
    END IF;
    v_wallet_id := (balance_wallet_for(p_user_id, v_table.currency)).id;
    PERFORM balance_accounts_lock(ARRAY[v_seat.account_id, v_wallet_id]);
    SELECT balance INTO v_chips FROM accounts_account WHERE id = v_seat.account_id;  -- locked just now
    IF p_amount IS NOT NULL AND p_amount > v_chips THEN
        PERFORM balance_refuse('insufficient_chips', format('the seat holds %s, %s requested', v_chips, p_amount),
                               jsonb_build_object('table_id', p_table_id, 'user_id', p_user_id, 'chips', v_chips,
                                                  'requested', p_amount));
    END IF;
    IF p_leave AND p_amount IS NOT NULL AND p_amount <> v_chips THEN
        PERFORM balance_refuse('invalid_request', 'leaving cashes out all the chips: omit amount',
                               jsonb_build_object('field', 'amount', 'chips', v_chips));
    END IF;
    v_moved := COALESCE(p_amount, v_chips);
    IF v_moved <> 0 THEN
        v_posted := balance_post('cash_out', p_actor,
                                 jsonb_build_object('table_id', p_table_id, 'user_id', p_user_id, 'seat_id', v_seat.id,
                                                    'leave', p_leave),
                                 ARRAY[v_seat.account_id, v_wallet_id], ARRAY[-v_moved, v_moved], NULL, 0, true);
        UPDATE tables_table SET chips = chips - v_moved, updated_at = clock_timestamp()
        WHERE id = v_table.id RETURNING * INTO v_table;
    END IF;
    IF p_leave THEN
        -- tables.seating.seat_leave: the seat account, at zero, is closed with the seat.
        UPDATE accounts_account SET status = 'closed', version = version + 1, updated_at = clock_timestamp()
        WHERE id = v_seat.account_id;
        UPDATE tables_seat SET status = 'left', left_at = clock_timestamp()
        WHERE id = v_seat.id RETURNING * INTO v_seat;
    END IF;
    RETURN v_posted || jsonb_build_object(
        'table', to_jsonb(v_table), 'seat', to_jsonb(v_seat),
        'accounts', balance_accounts_json(ARRAY[v_seat.account_id, v_wallet_id]));
END
$$;
