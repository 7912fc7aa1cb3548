-- 011: retrieval for conversations (issue 14): sessions, and the per-store document frequencies
-- BM25 needs.
--
-- docs/RETRIEVAL.md measures what each part buys on LoCoMo and on the labelled set.
--
-- 1. Sessions need no column: a memory's session (the run of memories of its store with the same
--    source, ordered by (created_at, id), without a gap over 30 minutes) is read at search time
--    from the conversation index below, around the few candidates of a query (core.hybrid). A
--    stored link to the previous turn had to be kept by triggers on every write path and made
--    bulk imports 20-80x slower (docs/BENCHMARKS.md, issue 14).
-- 2. Document frequencies. memory_lexemes(store, lexeme, df): in how many memories of the store a
--    lexeme of to_tsvector('english', content) occurs, kept exact by triggers like total_memories.
--    The row of the empty lexeme holds the sum of every memory's number of distinct lexemes (BM25's
--    average length). A search knows each query term's rarity before it reads a single posting, so
--    on a large store it can let only the rarer terms drive the index lookup (a bounded cost).

-- Document frequencies -------------------------------------------------------------------------------

CREATE TABLE memory_lexemes (
    tenant_id  uuid NOT NULL,
    store_id   uuid NOT NULL,
    lexeme     text NOT NULL,   -- '' : the store's total of distinct lexemes per memory (BM25's length)
    df         bigint NOT NULL CHECK (df >= 0),
    PRIMARY KEY (tenant_id, store_id, lexeme),
    FOREIGN KEY (tenant_id, store_id) REFERENCES memory_stores (tenant_id, id) ON DELETE CASCADE
);

-- The counts of some memories' lexemes, per store, in one lock order for every writer.
CREATE FUNCTION memex_lexeme_counts(tenant_ids uuid[], store_ids uuid[], vectors tsvector[])
RETURNS TABLE (tenant_id uuid, store_id uuid, lexeme text, n bigint)
LANGUAGE sql IMMUTABLE AS $$
    SELECT x.t, x.s, l.lexeme, count(*) FROM unnest(tenant_ids, store_ids, vectors) AS x(t, s, v), unnest(tsvector_to_array(x.v)) AS l(lexeme)
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT x.t, x.s, '', sum(length(x.v)) FROM unnest(tenant_ids, store_ids, vectors) AS x(t, s, v) GROUP BY 1, 2
    ORDER BY 1, 2, 3
$$;

-- SECURITY DEFINER: memex_app reads the table, only these functions write it (under the same
-- policies: the tenant in force, a key's scope).
CREATE FUNCTION memex_lexemes_add(tenant_ids uuid[], store_ids uuid[], vectors tsvector[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO memory_lexemes AS l (tenant_id, store_id, lexeme, df)
    SELECT c.tenant_id, c.store_id, c.lexeme, c.n FROM memex_lexeme_counts(tenant_ids, store_ids, vectors) c
    ON CONFLICT (tenant_id, store_id, lexeme) DO UPDATE SET df = l.df + EXCLUDED.df;
END
$$;
CREATE FUNCTION memex_lexemes_remove(tenant_ids uuid[], store_ids uuid[], vectors tsvector[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    gone_t uuid[];
    gone_s uuid[];
    gone_l text[];
BEGIN
    WITH c AS (SELECT * FROM memex_lexeme_counts(tenant_ids, store_ids, vectors)),
    locked AS (
        SELECT l.tenant_id, l.store_id, l.lexeme FROM memory_lexemes l JOIN c USING (tenant_id, store_id, lexeme)
        ORDER BY 1, 2, 3 FOR UPDATE OF l
    ), done AS (
        UPDATE memory_lexemes l SET df = greatest(l.df - c.n, 0) FROM c
        WHERE l.tenant_id = c.tenant_id AND l.store_id = c.store_id AND l.lexeme = c.lexeme
          AND (l.tenant_id, l.store_id, l.lexeme) IN (SELECT * FROM locked)
        RETURNING l.tenant_id, l.store_id, l.lexeme, l.df)
    SELECT array_agg(tenant_id), array_agg(store_id), array_agg(lexeme) INTO gone_t, gone_s, gone_l
    FROM done WHERE df = 0 AND lexeme <> '';
    DELETE FROM memory_lexemes l USING unnest(gone_t, gone_s, gone_l) AS g(t, s, lx)
    WHERE l.tenant_id = g.t AND l.store_id = g.s AND l.lexeme = g.lx AND l.df = 0;
END
$$;
REVOKE ALL ON FUNCTION memex_lexemes_add(uuid[], uuid[], tsvector[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION memex_lexemes_remove(uuid[], uuid[], tsvector[]) FROM PUBLIC;

CREATE FUNCTION memories_lexemes_inserted() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM memex_lexemes_add(array_agg(tenant_id), array_agg(store_id), array_agg(content_tsv)) FROM inserted HAVING count(*) > 0;
    RETURN NULL;
END
$$;
-- The memories of a store being deleted leave nothing to count: its rows go with it.
CREATE FUNCTION memories_lexemes_deleted() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM memex_lexemes_remove(array_agg(o.tenant_id), array_agg(o.store_id), array_agg(o.content_tsv))
    FROM deleted o
    WHERE EXISTS (SELECT 1 FROM memory_stores s WHERE s.tenant_id = o.tenant_id AND s.id = o.store_id)
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
-- Content changes one memory at a time: a row trigger (a transition-table UPDATE trigger cannot
-- name columns, so it would fire on every search's access bookkeeping).
CREATE FUNCTION memories_lexemes_changed() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM memex_lexemes_remove(ARRAY[OLD.tenant_id], ARRAY[OLD.store_id], ARRAY[OLD.content_tsv]);
    PERFORM memex_lexemes_add(ARRAY[NEW.tenant_id], ARRAY[NEW.store_id], ARRAY[NEW.content_tsv]);
    RETURN NULL;
END
$$;
CREATE TRIGGER memories_lexemes_inserted AFTER INSERT ON memories
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION memories_lexemes_inserted();
CREATE TRIGGER memories_lexemes_deleted AFTER DELETE ON memories
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION memories_lexemes_deleted();
CREATE TRIGGER memories_lexemes_changed AFTER UPDATE OF content ON memories
    FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content) EXECUTE FUNCTION memories_lexemes_changed();

-- The memories already there --------------------------------------------------------------------------

-- As owner, outside row-level security for this transaction only (it is FORCEd again below).
ALTER TABLE memories NO FORCE ROW LEVEL SECURITY;
INSERT INTO memory_lexemes (tenant_id, store_id, lexeme, df)
SELECT c.tenant_id, c.store_id, c.lexeme, c.n
FROM (SELECT array_agg(tenant_id) AS t, array_agg(store_id) AS s, array_agg(content_tsv) AS v FROM memories) a,
     memex_lexeme_counts(a.t, a.s, a.v) c
WHERE a.t IS NOT NULL;
ALTER TABLE memories FORCE ROW LEVEL SECURITY;

-- The conversation order of a store: predecessors, successors and neighbours are index probes. The
-- source is keyed by CASE, not coalesce: under row-level security only leakproof conditions become
-- index conditions, and PostgreSQL counts COALESCE as leaky (CASE is not), so a probe by
-- coalesce(source, '') read every later row of the store and filtered them.
CREATE INDEX memories_conversation ON memories (store_id, (CASE WHEN source IS NULL THEN '' ELSE source END), created_at, id);

-- Row-level security, as every table of a tenant ----------------------------------------------------

ALTER TABLE memory_lexemes ENABLE ROW LEVEL SECURITY;
ALTER TABLE memory_lexemes FORCE ROW LEVEL SECURITY;
CREATE POLICY memory_lexemes_isolation ON memory_lexemes
    USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid);
CREATE POLICY memory_lexemes_key_scope ON memory_lexemes AS RESTRICTIVE
    USING ((SELECT memex_key_unscoped()) OR store_id IN (SELECT s.id FROM memory_stores s));
CREATE POLICY memory_lexemes_api_signed ON memory_lexemes AS RESTRICTIVE TO memex_api
    USING ((SELECT memex_scope_signed())) WITH CHECK ((SELECT memex_scope_signed()));
GRANT SELECT ON memory_lexemes TO memex_app;

ANALYZE memories;
ANALYZE memory_lexemes;
