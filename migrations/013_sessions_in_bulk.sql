-- 013: session links (migration 011) at the cost of one range scan per statement, not per row.
--
-- Measured (docs/BENCHMARKS.md): with 011's triggers a bulk write of 20,000 memories into a new
-- store ran at 148 rows/s (main: thousands). Each row's predecessor was an index probe, planned
-- once per session while the table looked empty (a scan of the tenant's rows each time: quadratic
-- in a big import), and rows written before their predecessor (a chunk goes in id order) were
-- written a second time by the statement-level check.
--
-- 1. A writer that knows the links may say "no predecessor" with the row's own id (a memory never
--    precedes itself): the BEFORE INSERT trigger then stores NULL without a probe. The COPY path
--    (core.sql.memories) computes every row's link over the chunk and the store's rows in its time
--    range, so a bulk insert probes nothing and rewrites nothing.
-- 2. The statement-level check reads, per (store, source) written, the rows from 30 minutes before
--    the first written position to the last, and the row after it, once; it orders them with a
--    window and updates the rows whose link is not what the rule gives (the rule is unchanged).

CREATE OR REPLACE FUNCTION memories_session_start() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.session_prev = NEW.id THEN
        NEW.session_prev := NULL;
    ELSIF NEW.session_prev IS NULL THEN
        NEW.session_prev := memex_session_prev(NEW.store_id, coalesce(NEW.source, ''), NEW.created_at, NEW.id);
    END IF;
    RETURN NEW;
END
$$;

-- Re-check session_prev at the given positions: the memory now at each position (if any) and the
-- memory right after it. Rows whose predecessor changed take the new one, locked in id order.
CREATE OR REPLACE FUNCTION memex_sessions_refresh(tenants uuid[], stores uuid[], srcs text[], ats timestamptz[], ids uuid[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    WITH touched AS (
        SELECT DISTINCT t.t, t.s, t.src, t.at, t.mid FROM unnest(tenants, stores, srcs, ats, ids) AS t(t, s, src, at, mid)
    ), grp AS (
        SELECT t, s, src, min(at) AS lo, max(at) AS hi FROM touched GROUP BY 1, 2, 3
    ), span AS MATERIALIZED (
        -- every row a checked row's predecessor can be (the rule looks back 30 minutes at most),
        -- and the row after the last written position
        SELECT g.t, g.s, g.src, m.id, m.created_at AS at, m.session_prev
        FROM grp g JOIN memories m ON m.store_id = g.s AND coalesce(m.source, '') = g.src
            AND m.created_at >= g.lo - interval '30 minutes' AND m.created_at <= g.hi
        UNION ALL
        SELECT g.t, g.s, g.src, n.id, n.created_at, n.session_prev FROM grp g CROSS JOIN LATERAL (
            SELECT m.id, m.created_at, m.session_prev FROM memories m
            WHERE m.store_id = g.s AND coalesce(m.source, '') = g.src AND m.created_at > g.hi
            ORDER BY m.created_at, m.id LIMIT 1) n
    ), wanted AS (
        SELECT p.t, p.s, p.src, p.id, p.at, p.session_prev,
               CASE WHEN lag(p.at) OVER w >= p.at - interval '30 minutes' THEN lag(p.id) OVER w END AS prev
        FROM span p WINDOW w AS (PARTITION BY p.s, p.src ORDER BY p.at, p.id)
    ), seq AS (
        -- the rows, and the written positions no row holds any more (deleted, moved away); a row is
        -- checked when it was written or follows a written position
        SELECT w.s, w.src, w.id, w.at, true AS row_, x.mid IS NOT NULL AS written
        FROM wanted w LEFT JOIN touched x ON x.s = w.s AND x.src = w.src AND x.mid = w.id AND x.at = w.at
        UNION ALL
        SELECT x.s, x.src, x.mid, x.at, false, true FROM touched x
        WHERE NOT EXISTS (SELECT 1 FROM span p WHERE p.s = x.s AND p.src = x.src AND p.id = x.mid AND p.at = x.at)
    ), checked AS (
        SELECT q.s, q.src, q.id, q.at FROM (
            SELECT s.*, coalesce(lag(s.written) OVER (PARTITION BY s.s, s.src ORDER BY s.at, s.id), false) AS after_written FROM seq s) q
        WHERE q.row_ AND (q.written OR q.after_written)
    ), stale AS (
        SELECT m.tenant_id, m.id, w.prev FROM wanted w
        JOIN checked c ON c.s = w.s AND c.src = w.src AND c.id = w.id AND c.at = w.at
        JOIN memories m ON m.tenant_id = w.t AND m.id = w.id
        WHERE m.session_prev IS DISTINCT FROM w.prev ORDER BY m.id FOR UPDATE OF m
    )
    UPDATE memories m SET session_prev = stale.prev
    FROM stale WHERE m.tenant_id = stale.tenant_id AND m.id = stale.id;
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END
$$;
