-- (d) The floor: the least plain SQL a charge needs, as one statement (one round trip, one implicit
-- transaction): a balance UPDATE guarded by the floor, and one ledger row. Cheaper than the same two
-- statements inside BEGIN ... COMMIT, which costs three more round trips.
\set uid random(1, :nusers)
WITH debit AS (
    UPDATE bench.floor_accounts SET balance = balance - 0.1
    WHERE user_id = 'user-' || :uid::integer AND balance - 0.1 >= 0
    RETURNING id, balance
)
INSERT INTO bench.floor_ledger (account_id, amount, balance_after)
SELECT id, -0.1, balance FROM debit;
