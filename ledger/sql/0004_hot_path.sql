-- The ledger's part of the PostgreSQL hot path (see ledger/hot_path.py): refusals, account checks,
-- holds and postings, as PL/pgSQL, so that a hot call is one round trip instead of twenty ORM queries.
-- The same rules as ledger/services.py, in the same order, with the same error codes and details.
--
-- Entries leave balance_post without their checksums: the HMAC key never enters the database.
-- The caller (ledger/hot_path.py) computes them and writes the entries with balance_seal, in the
-- same database transaction.
--
-- This file is the state of migration ledger/0004: change a function with a new file and migration.

-- A business refusal. ledger/hot_path.py turns SQLSTATE BL001 into ApplicationError(HINT, MESSAGE,
-- DETAIL as JSON); the whole database transaction is rolled back with it.
CREATE OR REPLACE FUNCTION balance_refuse(p_code text, p_message text, p_details jsonb DEFAULT '{}'::jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'BL001', MESSAGE = p_message, DETAIL = p_details::text, HINT = p_code;
END
$$;

-- ledger.chain.format_timestamp: UTC, microseconds, a Z.
CREATE OR REPLACE FUNCTION balance_timestamp(p_moment timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(p_moment AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- ledger.services.ensure_usable
CREATE OR REPLACE FUNCTION balance_account_usable(p_account accounts_account, p_allow_frozen boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_account.status = 'closed' THEN
        PERFORM balance_refuse('account_closed', format('account %s is closed', p_account.id),
                               jsonb_build_object('account_id', p_account.id));
    ELSIF p_account.status = 'frozen' AND NOT p_allow_frozen THEN
        PERFORM balance_refuse('account_frozen', format('account %s is frozen', p_account.id),
                               jsonb_build_object('account_id', p_account.id));
    END IF;
END
$$;

-- ledger.services._check_funds: ``p_account`` carries its new balance and hold.
CREATE OR REPLACE FUNCTION balance_funds_check(p_account accounts_account, p_requested bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_available bigint := p_account.balance - p_account.held + p_requested;
BEGIN
    IF p_account.allow_negative OR p_account.balance - p_account.held >= 0 THEN
        RETURN;
    END IF;
    PERFORM balance_refuse('insufficient_funds',
                           format('account %s has %s available, %s requested', p_account.id, v_available, p_requested),
                           jsonb_build_object('account_id', p_account.id, 'available', v_available,
                                              'requested', p_requested));
END
$$;

-- ledger.services.accounts_lock: FOR UPDATE in ascending id; account_not_found names the first
-- missing. ``p_ids`` are distinct.
CREATE OR REPLACE FUNCTION balance_accounts_lock(p_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_locked integer;
BEGIN
    PERFORM 1 FROM accounts_account WHERE id = ANY (p_ids) ORDER BY id FOR UPDATE;
    GET DIAGNOSTICS v_locked = ROW_COUNT;
    IF v_locked < cardinality(p_ids) THEN
        PERFORM balance_account_missing_refuse(p_ids);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION balance_account_missing_refuse(p_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_missing bigint;
BEGIN
    SELECT x INTO v_missing FROM unnest(p_ids) AS x
    WHERE NOT EXISTS (SELECT 1 FROM accounts_account WHERE id = x) ORDER BY x LIMIT 1;
    PERFORM balance_refuse('account_not_found', format('account %s does not exist', v_missing),
                           jsonb_build_object('account_id', v_missing));
END
$$;

-- ledger.services.holds_apply for one account: raise (delta > 0) or drop a hold; no money moves.
-- (Refusal helpers are called only on the failing branch: each call is a statement of its own.)
CREATE OR REPLACE FUNCTION balance_hold(p_account_id bigint, p_delta bigint, p_allow_frozen boolean DEFAULT false)
RETURNS accounts_account LANGUAGE plpgsql AS $$
DECLARE
    v_account accounts_account;
BEGIN
    SELECT * INTO v_account FROM accounts_account WHERE id = p_account_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM balance_account_missing_refuse(ARRAY[p_account_id]);
    END IF;
    IF p_delta > 0 AND v_account.status <> 'active' THEN
        PERFORM balance_account_usable(v_account, p_allow_frozen);
    END IF;
    -- Compared before adding: held + p_delta may not fit in a bigint when p_delta is refused.
    IF p_delta > v_account.balance - v_account.held AND NOT v_account.allow_negative THEN
        PERFORM balance_refuse('insufficient_funds',
                               format('account %s has %s available, %s requested', v_account.id,
                                      v_account.balance - v_account.held, p_delta),
                               jsonb_build_object('account_id', v_account.id,
                                                  'available', v_account.balance - v_account.held,
                                                  'requested', p_delta));
    END IF;
    v_account.held := v_account.held + p_delta;
    IF v_account.held < 0 THEN
        RAISE EXCEPTION 'hold on account % would go below zero', p_account_id;
    END IF;
    UPDATE accounts_account SET held = v_account.held, version = version + 1, updated_at = clock_timestamp()
    WHERE id = p_account_id RETURNING * INTO v_account;
    RETURN v_account;
END
$$;

-- ledger.services.transaction_post: one balanced posting. Legs are (p_ids[i], p_amounts[i]), each
-- account once; p_hold_id's hold changes by p_hold_delta in the same step. Locks, checks currency,
-- status and funds (in that order, over all accounts, as the ORM path), inserts the transaction,
-- updates the accounts (chain heads excepted) and answers
-- {"transaction": row, "entries": [entry without checksum, with prev_checksum]}.
CREATE OR REPLACE FUNCTION balance_post(p_kind text, p_actor text, p_metadata jsonb, p_ids bigint[],
                                        p_amounts bigint[], p_hold_id bigint DEFAULT NULL,
                                        p_hold_delta bigint DEFAULT 0, p_allow_frozen boolean DEFAULT false)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_ids bigint[];
    v_sum numeric := 0;
    v_amount bigint;
    v_delta bigint;
    v_rows accounts_account[] := '{}';
    v_account accounts_account;
    v_tx ledger_transaction;
    v_entries jsonb := '[]'::jsonb;
BEGIN
    IF cardinality(p_ids) < 2 OR cardinality(p_ids) <> cardinality(p_amounts) THEN
        RAISE EXCEPTION 'a transaction needs two or more legs: % %', p_ids, p_amounts;
    END IF;
    FOREACH v_amount IN ARRAY p_amounts LOOP
        IF v_amount = 0 THEN
            RAISE EXCEPTION 'leg amounts must be non-zero: %', p_amounts;
        END IF;
        v_sum := v_sum + v_amount;
    END LOOP;
    IF v_sum <> 0 THEN
        PERFORM balance_refuse('unbalanced_transaction', 'the legs of a transaction must sum to zero',
                               jsonb_build_object('sum', v_sum));
    END IF;
    v_ids := ARRAY(SELECT DISTINCT x FROM unnest(p_ids || p_hold_id) AS x WHERE x IS NOT NULL ORDER BY x);
    IF cardinality(v_ids) <> cardinality(p_ids) + (CASE WHEN p_hold_id IS NULL OR p_hold_id = ANY (p_ids) THEN 0 ELSE 1 END) THEN
        RAISE EXCEPTION 'an account appears twice in the legs: %', p_ids;
    END IF;
    FOR v_account IN SELECT * FROM accounts_account WHERE id = ANY (v_ids) ORDER BY id FOR UPDATE LOOP
        v_rows := v_rows || v_account;
    END LOOP;
    IF cardinality(v_rows) <> cardinality(v_ids) THEN
        PERFORM balance_account_missing_refuse(v_ids);
    END IF;
    FOREACH v_account IN ARRAY v_rows LOOP
        IF v_account.currency <> v_rows[1].currency THEN
            PERFORM balance_refuse('currency_mismatch', 'all accounts of a transaction must share one currency',
                                   jsonb_build_object('accounts', (SELECT jsonb_object_agg(a.id::text, a.currency)
                                                                   FROM unnest(v_rows) AS a)));
        END IF;
    END LOOP;
    FOREACH v_account IN ARRAY v_rows LOOP
        IF v_account.status <> 'active' THEN
            PERFORM balance_account_usable(v_account, p_allow_frozen);
        END IF;
    END LOOP;

    INSERT INTO ledger_transaction (kind, currency, actor, metadata, created_at)
    VALUES (p_kind, v_rows[1].currency, p_actor, COALESCE(p_metadata, '{}'::jsonb), v_now)
    RETURNING * INTO v_tx;

    FOREACH v_account IN ARRAY v_rows LOOP
        v_amount := COALESCE(p_amounts[array_position(p_ids, v_account.id)], 0);
        v_delta := CASE WHEN v_account.id = p_hold_id THEN p_hold_delta ELSE 0 END;
        v_account.held := v_account.held + v_delta;
        v_account.balance := v_account.balance + v_amount;
        IF v_account.balance - v_account.held < 0 AND NOT v_account.allow_negative THEN
            PERFORM balance_funds_check(v_account, -v_amount + v_delta);
        END IF;
        IF v_amount <> 0 THEN
            v_entries := v_entries || jsonb_build_object(
                'transaction_id', v_tx.id, 'account_id', v_account.id, 'seq', v_account.entry_seq + 1,
                'amount', v_amount, 'currency', v_account.currency, 'balance_after', v_account.balance,
                'created_at', v_now, 'prev_checksum', v_account.chain_head);
            v_account.entry_seq := v_account.entry_seq + 1;
        END IF;
        UPDATE accounts_account
        SET balance = v_account.balance, held = v_account.held, version = version + 1,
            entry_seq = v_account.entry_seq, updated_at = v_now
        WHERE id = v_account.id;
    END LOOP;
    RETURN jsonb_build_object('transaction', to_jsonb(v_tx), 'entries', v_entries);
END
$$;

-- Write the entries of balance_post with the checksums the caller computed, and move each
-- account's chain head to its entry. Refuses entries that are not the next of their chain.
CREATE OR REPLACE FUNCTION balance_seal(p_entries jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_entry record;
BEGIN
    INSERT INTO ledger_entry (transaction_id, account_id, seq, amount, currency, balance_after, created_at, checksum)
    SELECT e.transaction_id, e.account_id, e.seq, e.amount, e.currency, e.balance_after, e.created_at, e.checksum
    FROM jsonb_to_recordset(p_entries) AS e(transaction_id bigint, account_id bigint, seq bigint, amount bigint,
                                            currency text, balance_after bigint, created_at timestamptz,
                                            checksum text);
    -- Row by row on the primary key: a join with the recordset would scan the whole accounts table.
    FOR v_entry IN SELECT * FROM jsonb_to_recordset(p_entries) AS e(account_id bigint, seq bigint, checksum text) LOOP
        UPDATE accounts_account SET chain_head = v_entry.checksum
        WHERE id = v_entry.account_id AND entry_seq = v_entry.seq;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'entry % of account % is not the head of its chain', v_entry.seq, v_entry.account_id;
        END IF;
    END LOOP;
END
$$;

-- The accounts as JSON rows by id: what a hot call answers with and the balance cache is fed.
CREATE OR REPLACE FUNCTION balance_accounts_json(p_ids bigint[]) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(jsonb_object_agg(a.id::text, to_jsonb(a)), '{}'::jsonb)
    FROM accounts_account AS a WHERE a.id = ANY (p_ids)
$$;

-- The chain guard, checked at COMMIT: an account whose balance, sequence or chain head changed
-- must end the transaction at the entry its head names, with that entry's balance_after. So a
-- posting whose entries were never written (a seal the caller forgot), or a balance moved
-- without an entry, is refused by the database, on either path.
CREATE OR REPLACE FUNCTION ledger_account_chain_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_account accounts_account;
    v_entry ledger_entry;
BEGIN
    SELECT * INTO v_account FROM accounts_account WHERE id = NEW.id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_account.entry_seq = 0 THEN
        IF v_account.balance <> 0 OR v_account.chain_head <> '' THEN
            RAISE EXCEPTION 'account % has a balance or chain head but no entries', NEW.id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END IF;
    SELECT * INTO v_entry FROM ledger_entry WHERE account_id = NEW.id AND seq = v_account.entry_seq;
    IF NOT FOUND OR v_entry.checksum <> v_account.chain_head OR v_entry.balance_after <> v_account.balance THEN
        RAISE EXCEPTION 'account % does not end at its chain head entry % (balance %, head %)', NEW.id,
                        v_account.entry_seq, v_account.balance, v_account.chain_head
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS accounts_account_chain_guard ON accounts_account;
CREATE CONSTRAINT TRIGGER accounts_account_chain_guard
    AFTER UPDATE ON accounts_account
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.balance IS DISTINCT FROM OLD.balance OR NEW.entry_seq IS DISTINCT FROM OLD.entry_seq
          OR NEW.chain_head IS DISTINCT FROM OLD.chain_head)
    EXECUTE FUNCTION ledger_account_chain_check();
