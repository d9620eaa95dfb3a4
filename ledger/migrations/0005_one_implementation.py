"""One implementation of every money rule: the PL/pgSQL twins of the hot calls go, the chain guard stays.

The functions that ledger/0004, reservations/0003 and tables/0002 once created are dropped (they
decided which legs the service signed). The chain guard (a deferred trigger) is kept and now also
checks a newly inserted account: at COMMIT every account whose balance, sequence or chain head is
not at its starting point must end at the entry its head names, with that entry's balance_after,
so a balance moved without an entry is refused by the database whatever wrote it.
"""

from django.db import migrations

from balance_project.sql_migrations import RunSQLOnPostgres

DROP_TWINS = """
DROP FUNCTION IF EXISTS balance_account_missing_refuse CASCADE;
DROP FUNCTION IF EXISTS balance_account_usable CASCADE;
DROP FUNCTION IF EXISTS balance_accounts_json CASCADE;
DROP FUNCTION IF EXISTS balance_accounts_lock CASCADE;
DROP FUNCTION IF EXISTS balance_buy_in CASCADE;
DROP FUNCTION IF EXISTS balance_cash_out CASCADE;
DROP FUNCTION IF EXISTS balance_funds_check CASCADE;
DROP FUNCTION IF EXISTS balance_hand_record CASCADE;
DROP FUNCTION IF EXISTS balance_hand_settle CASCADE;
DROP FUNCTION IF EXISTS balance_hold CASCADE;
DROP FUNCTION IF EXISTS balance_post CASCADE;
DROP FUNCTION IF EXISTS balance_refuse CASCADE;
DROP FUNCTION IF EXISTS balance_reservation_commit CASCADE;
DROP FUNCTION IF EXISTS balance_reservation_commit_locked CASCADE;
DROP FUNCTION IF EXISTS balance_reservation_end CASCADE;
DROP FUNCTION IF EXISTS balance_reservation_hold CASCADE;
DROP FUNCTION IF EXISTS balance_reservation_lock CASCADE;
DROP FUNCTION IF EXISTS balance_reservation_release CASCADE;
DROP FUNCTION IF EXISTS balance_reservation_require_pending CASCADE;
DROP FUNCTION IF EXISTS balance_reserve CASCADE;
DROP FUNCTION IF EXISTS balance_seal CASCADE;
DROP FUNCTION IF EXISTS balance_seat_lock_or_open CASCADE;
DROP FUNCTION IF EXISTS balance_table_lock CASCADE;
DROP FUNCTION IF EXISTS balance_table_require_open CASCADE;
DROP FUNCTION IF EXISTS balance_table_seats_json CASCADE;
DROP FUNCTION IF EXISTS balance_timestamp CASCADE;
DROP FUNCTION IF EXISTS balance_wallet_for CASCADE;
"""

CHAIN_GUARD = r"""
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

DROP TRIGGER IF EXISTS accounts_account_chain_guard_insert ON accounts_account;
CREATE CONSTRAINT TRIGGER accounts_account_chain_guard_insert
    AFTER INSERT ON accounts_account
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.balance <> 0 OR NEW.entry_seq <> 0 OR NEW.chain_head <> '')
    EXECUTE FUNCTION ledger_account_chain_check();
"""

REVERSE = r"""
DROP TRIGGER IF EXISTS accounts_account_chain_guard_insert ON accounts_account;
DROP TRIGGER IF EXISTS accounts_account_chain_guard ON accounts_account;
DROP FUNCTION IF EXISTS ledger_account_chain_check();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0004_pg_hot_path"),
        ("reservations", "0003_pg_hot_path"),
        ("tables", "0002_pg_hot_path"),
    ]

    operations = [
        RunSQLOnPostgres(sql=DROP_TWINS, reverse_sql=migrations.RunSQL.noop),
        RunSQLOnPostgres(sql=CHAIN_GUARD, reverse_sql=REVERSE),
    ]
