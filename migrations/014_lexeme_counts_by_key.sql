-- 014: taking many memories' lexemes off their store's counts finds each count by its key.
--
-- Migration 011's memex_lexemes_remove locked the counts in a CTE and then updated the rows
-- "IN (SELECT * FROM locked)". Under row-level security (forced on the owner too) the planner
-- joined that condition as a nested loop over the CTE: every updated count scanned every locked
-- one. A store whose memories hold many different words paid for it quadratically: deleting
-- 5,000 memories of the benchmark's 100,000-memory store spent 30 s in this trigger, 20,000
-- about six minutes. Here the counts are computed once, locked in the same order as before,
-- then updated and emptied ones deleted through joins on the primary key.

CREATE OR REPLACE FUNCTION memex_lexemes_remove(tenant_ids uuid[], store_ids uuid[], vectors tsvector[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    ct uuid[];
    cs uuid[];
    cl text[];
    cn bigint[];
BEGIN
    SELECT array_agg(c.tenant_id), array_agg(c.store_id), array_agg(c.lexeme), array_agg(c.n)
    INTO ct, cs, cl, cn FROM memex_lexeme_counts(tenant_ids, store_ids, vectors) c;
    IF ct IS NULL THEN
        RETURN;
    END IF;
    -- one lock order for every writer (memex_lexeme_counts sorts), as before
    PERFORM 1 FROM memory_lexemes l JOIN unnest(ct, cs, cl) AS c(t, s, lx) ON l.tenant_id = c.t AND l.store_id = c.s AND l.lexeme = c.lx
    ORDER BY l.tenant_id, l.store_id, l.lexeme FOR UPDATE OF l;
    UPDATE memory_lexemes l SET df = greatest(l.df - c.n, 0) FROM unnest(ct, cs, cl, cn) AS c(t, s, lx, n)
    WHERE l.tenant_id = c.t AND l.store_id = c.s AND l.lexeme = c.lx;
    DELETE FROM memory_lexemes l USING unnest(ct, cs, cl) AS c(t, s, lx)
    WHERE l.tenant_id = c.t AND l.store_id = c.s AND l.lexeme = c.lx AND l.df = 0 AND l.lexeme <> '';
END
$$;
REVOKE ALL ON FUNCTION memex_lexemes_remove(uuid[], uuid[], tsvector[]) FROM PUBLIC;
