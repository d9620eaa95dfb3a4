"""PostgreSQL keeps the books too, so a write that skips the ORM is still refused.

- ledger_entry is append-only: UPDATE and DELETE are refused row by row; TRUNCATE is refused
  unless the same statement wipes the whole books (accounts, transactions, checkpoints), which is
  what a test-database flush does and leaves no account with a shortened history.
- A deferred constraint trigger (checked at COMMIT, as django-hordak does) refuses a transaction
  whose entries do not sum to zero, or an entry whose currency is not its transaction's or its
  account's.
- ledger_transaction keeps its id, kind and currency, and cannot be deleted while it has entries.

A superuser can still bypass all of this (session_replication_role = replica, DISABLE TRIGGER);
the checksum chains and checkpoints catch what gets through (ledger/integrity.py).
On SQLite these operations do nothing.
"""

from django.db import migrations

from balance_project.sql_migrations import RunSQLOnPostgres

FORWARD = r"""
CREATE OR REPLACE FUNCTION ledger_entry_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only: % of entry % refused', TG_OP, OLD.id
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER ledger_entry_append_only
    BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_refuse_change();

-- AFTER the statement: a multi-table TRUNCATE has emptied every table it names by then.
CREATE OR REPLACE FUNCTION ledger_entry_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM accounts_account) OR EXISTS (SELECT 1 FROM ledger_transaction)
            OR EXISTS (SELECT 1 FROM ledger_checkpoint) THEN
        RAISE EXCEPTION 'ledger entries are append-only: TRUNCATE of ledger_entry refused while accounts, '
                        'transactions or checkpoints remain'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER ledger_entry_no_truncate
    AFTER TRUNCATE ON ledger_entry
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entry_refuse_truncate();

CREATE OR REPLACE FUNCTION ledger_entry_check_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tx_currency text;
    account_currency text;
    total numeric;
BEGIN
    SELECT currency INTO tx_currency FROM ledger_transaction WHERE id = NEW.transaction_id;
    IF NEW.currency IS DISTINCT FROM tx_currency THEN
        RAISE EXCEPTION 'entry % is in %, its transaction % in %', NEW.id, NEW.currency, NEW.transaction_id,
                        tx_currency
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT currency INTO account_currency FROM accounts_account WHERE id = NEW.account_id;
    IF NEW.currency IS DISTINCT FROM account_currency THEN
        RAISE EXCEPTION 'entry % is in %, its account % in %', NEW.id, NEW.currency, NEW.account_id,
                        account_currency
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT COALESCE(SUM(amount), 0) INTO total FROM ledger_entry WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'transaction % does not balance: its entries sum to %', NEW.transaction_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER ledger_entry_transaction_balanced
    AFTER INSERT OR UPDATE ON ledger_entry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_check_transaction();

CREATE OR REPLACE FUNCTION ledger_transaction_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT 1 FROM ledger_entry WHERE transaction_id = OLD.id) THEN
            RAISE EXCEPTION 'transaction % has entries and cannot be deleted', OLD.id
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.id <> OLD.id OR NEW.kind IS DISTINCT FROM OLD.kind OR NEW.currency IS DISTINCT FROM OLD.currency THEN
        RAISE EXCEPTION 'the id, kind and currency of transaction % cannot change', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER ledger_transaction_guard
    BEFORE UPDATE OR DELETE ON ledger_transaction
    FOR EACH ROW EXECUTE FUNCTION ledger_transaction_guard();
"""

REVERSE = r"""
DROP TRIGGER IF EXISTS ledger_transaction_guard ON ledger_transaction;
DROP FUNCTION IF EXISTS ledger_transaction_guard();
DROP TRIGGER IF EXISTS ledger_entry_transaction_balanced ON ledger_entry;
DROP FUNCTION IF EXISTS ledger_entry_check_transaction();
DROP TRIGGER IF EXISTS ledger_entry_no_truncate ON ledger_entry;
DROP FUNCTION IF EXISTS ledger_entry_refuse_truncate();
DROP TRIGGER IF EXISTS ledger_entry_append_only ON ledger_entry;
DROP FUNCTION IF EXISTS ledger_entry_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("ledger", "0002_integrity_run"),
    ]

    operations = [RunSQLOnPostgres(sql=FORWARD, reverse_sql=REVERSE)]
