-- 010: where people wait (issue 13): rows of small stores stay out of the HNSW graphs, and
-- embedding maps are kept in the database. docs/BENCHMARKS.md has the figures.

-- 1. Only the rows of big stores are in the HNSW graphs.
-- Search reads a store of up to SearchTuning.exact_max_rows (7,500) memories exactly and never
-- through the HNSW index, yet every insert paid the graph insertion: ~4 ms of server CPU a row,
-- about 97 per cent of an insert's cost, so `memex import` ran at 300-500 rows/s whatever the client did.
-- With `indexed` in each index's predicate a row enters the graph only when it is set:
-- - small writes (the executemany path of an agent's add) into a store above the exact size set it
--   at once, as before;
-- - bulk writes (COPY: imports, bulk_add_memories) leave it false; a big store is then searched as
--   HNSW over its indexed rows plus an exact scan of its unindexed ones (core.sql.search), and
--   MemoryService.index_pending (after the import, `memex index`, the explorer and API servers in
--   the background) sets it, 2,000 rows a transaction, for stores above the exact size.
-- Setting it touches neither updated_at nor anything memory history records.
ALTER TABLE memories ADD COLUMN indexed boolean NOT NULL DEFAULT false;

DROP INDEX IF EXISTS memories_embedding_256_hnsw, memories_embedding_384_hnsw, memories_embedding_512_hnsw,
    memories_embedding_1024_hnsw, memories_embedding_1536_hnsw;

-- The rows of stores already above the exact size go in, tenant by tenant under the tenant's own
-- policy (row-level security is forced on the owner too; the owner lists tenants).
DO $$
DECLARE
    t uuid;
BEGIN
    FOR t IN SELECT id FROM tenants LOOP
        PERFORM set_config('app.current_tenant_id', t::text, true);
        UPDATE memories m SET indexed = true FROM memory_stores s
            WHERE s.tenant_id = m.tenant_id AND s.id = m.store_id AND s.total_memories > 7500;
    END LOOP;
    PERFORM set_config('app.current_tenant_id', '', true);
END
$$;

CREATE INDEX memories_embedding_256_hnsw ON memories
    USING hnsw ((embedding::vector(256)) vector_cosine_ops) WITH (m = 16, ef_construction = 128) WHERE embedding_dim = 256 AND indexed;
CREATE INDEX memories_embedding_384_hnsw ON memories
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 128) WHERE embedding_dim = 384 AND indexed;
CREATE INDEX memories_embedding_512_hnsw ON memories
    USING hnsw ((embedding::vector(512)) vector_cosine_ops) WITH (m = 16, ef_construction = 128) WHERE embedding_dim = 512 AND indexed;
CREATE INDEX memories_embedding_1024_hnsw ON memories
    USING hnsw ((embedding::vector(1024)) vector_cosine_ops) WITH (m = 16, ef_construction = 128) WHERE embedding_dim = 1024 AND indexed;
CREATE INDEX memories_embedding_1536_hnsw ON memories
    USING hnsw ((embedding::vector(1536)) vector_cosine_ops) WITH (m = 16, ef_construction = 128) WHERE embedding_dim = 1536 AND indexed;

-- Finds a big store's unindexed rows without walking the store (an empty delta is one probe).
CREATE INDEX memories_unindexed ON memories (store_id) WHERE NOT indexed;

-- 2. Embedding maps, kept. A UMAP fit takes seconds to minutes; a map read back whole from one row
-- takes milliseconds, survives a restart and is shared by every explorer process. One row per
-- (store, parameters): the ids placed (16 bytes each) and their coordinates (float32), with what
-- the map was fitted on, so a page can tell a current map from one the store has moved past.
CREATE TABLE store_projections (
    tenant_id      uuid NOT NULL,
    store_id       uuid NOT NULL,
    params         text NOT NULL,          -- e.g. 'umap nn=15 md=0.10 dims=2 seed=42 cap=20000'
    model          text NOT NULL,          -- the store's model and dimension: a re-embedded store gets a new map
    memory_count   integer NOT NULL,       -- memories in the store when fitted
    latest_update  timestamptz,            -- the store's max(updated_at) when fitted
    computed_at    timestamptz NOT NULL DEFAULT now(),
    fit_seconds    real NOT NULL,
    dims           smallint NOT NULL CHECK (dims IN (2, 3)),
    ids            bytea NOT NULL,         -- n x 16 bytes: the memories placed, in order
    coords         bytea NOT NULL,         -- n x dims float32, little-endian
    PRIMARY KEY (tenant_id, store_id, params),
    FOREIGN KEY (tenant_id, store_id) REFERENCES memory_stores (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT store_projections_sizes CHECK (mod(octet_length(ids), 16) = 0 AND octet_length(coords) = octet_length(ids) / 16 * dims * 4)
);
ALTER TABLE store_projections ENABLE ROW LEVEL SECURITY;
ALTER TABLE store_projections FORCE ROW LEVEL SECURITY;
CREATE POLICY store_projections_isolation ON store_projections
    USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON store_projections TO memex_app;
-- The API's role, as on every table (migration 008): nothing without a signed scope.
CREATE POLICY store_projections_api_signed ON store_projections AS RESTRICTIVE TO memex_api
    USING ((SELECT memex_scope_signed())) WITH CHECK ((SELECT memex_scope_signed()));

ANALYZE memories;
