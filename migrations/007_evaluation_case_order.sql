-- 007: evaluation cases keep the order they were written in.
--
-- Cases saved together share one created_at (the transaction's time), so ordering by it returned
-- a set's cases shuffled: the Evaluate page and `memex eval` reports then listed them in an order
-- that changed between runs. An explicit position per set fixes the order.
ALTER TABLE evaluation_cases ADD COLUMN position integer;
UPDATE evaluation_cases c SET position = o.n
FROM (SELECT tenant_id, id, row_number() OVER (PARTITION BY tenant_id, set_id ORDER BY created_at, id) AS n
      FROM evaluation_cases) o
WHERE c.tenant_id = o.tenant_id AND c.id = o.id;
ALTER TABLE evaluation_cases ALTER COLUMN position SET NOT NULL;
