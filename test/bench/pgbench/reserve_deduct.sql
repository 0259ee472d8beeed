-- (b) The classic two-call path, two transactions as an application makes them: hold 0.1 credits,
-- then settle the hold for the same amount (the price of {"input_tokens": 100}).
\set uid random(1, :nusers)
SELECT reservation_id FROM ducto.reserve_credits('user-' || :uid::integer, 0.1) \gset
SELECT * FROM ducto.deduct_credits('user-' || :uid::integer, :reservation_id::uuid, 0.1);
