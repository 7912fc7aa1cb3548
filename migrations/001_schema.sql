-- 001: tenants, users, memory stores, memories and their relationships.
--
-- The seed design (migration 031_persistent_memory.sql of the TypeScript service) kept, column for
-- column, with deliberate changes. Each change says why where it is made.

CREATE EXTENSION IF NOT EXISTS vector;

-- CHANGE: an application role that owns nothing, is not superuser and cannot bypass RLS.
-- The seed ran every query as the pool's role, typically the owner, which RLS does not restrain.
-- memex_app gets only the DML it needs; login roles of a deployment are granted memex_app.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'memex_app') THEN
        CREATE ROLE memex_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
END
$$;

-- The seed referenced tenants and users without defining them.
CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        varchar(100) NOT NULL UNIQUE CHECK (btrim(name) <> ''),
    created_at  timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CHANGE: every tenant table has tenant_id in its primary key. A UUID made by gen_random_uuid()
-- is unique anyway, but ids can also come from an import file: with (tenant_id, id) one tenant
-- can never collide with, or learn of, another tenant's id. It is also the key a distributed
-- PostgreSQL (Citus, docs/SCALING.md) needs: unique keys must contain the distribution column.
CREATE TABLE users (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    name        varchar(100) NOT NULL CHECK (btrim(name) <> ''),
    created_at  timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- CHANGE: stores record the dimension of their embedding model. Models of different sizes
-- (384, 1024, 1536) share the memories table; the dimension tells which vector index serves a
-- store, and memories(embedding_dim) references it so no vector of another size can enter.
-- embedding_model has no default here: the service sets it (the seed's text-embedding-3-small
-- needs an OpenAI account, the local all-MiniLM-L6-v2 needs none).
CREATE TABLE memory_stores (
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id          uuid NOT NULL,
    store_name       varchar(100) NOT NULL DEFAULT 'default' CHECK (btrim(store_name) <> ''),
    embedding_model  varchar(100) NOT NULL CHECK (btrim(embedding_model) <> ''),
    embedding_dim    integer NOT NULL CHECK (embedding_dim IN (256, 384, 512, 1024, 1536)),
    total_memories   integer NOT NULL DEFAULT 0 CHECK (total_memories >= 0),
    last_accessed    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, user_id, store_name),
    UNIQUE (tenant_id, id, embedding_dim),
    -- CHANGE: composite key, so a store's user belongs to the store's tenant.
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE memories (
    tenant_id      uuid NOT NULL,
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    store_id       uuid NOT NULL,
    content        text NOT NULL,
    -- CHANGE: untyped vector plus its dimension (was vector(1536)); see the indexes below.
    -- NOT NULL: a memory that cannot be searched is not kept (the service embeds on every add).
    embedding      vector NOT NULL,
    embedding_dim  integer NOT NULL,
    memory_type    varchar(50) NOT NULL DEFAULT 'fact',
    source         varchar(100),
    importance     numeric(3, 2) NOT NULL DEFAULT 0.5,
    access_count   integer NOT NULL DEFAULT 0 CHECK (access_count >= 0),
    last_accessed  timestamptz,
    expires_at     timestamptz,
    metadata       jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at     timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- CHANGE: full-text search on the content, kept by PostgreSQL itself, for hybrid retrieval.
    content_tsv    tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    PRIMARY KEY (tenant_id, id),
    -- CHANGE: tenant_id on memories, and a composite key to the store: a memory's store always
    -- belongs to the memory's tenant, and its vector has the store's dimension.
    -- DEFERRABLE: re-embedding a store into a model of another size changes the store's and its
    -- memories' dimension in one transaction, checked at commit.
    CONSTRAINT memories_store_fk FOREIGN KEY (tenant_id, store_id, embedding_dim)
        REFERENCES memory_stores (tenant_id, id, embedding_dim) ON DELETE CASCADE DEFERRABLE INITIALLY IMMEDIATE,
    -- CHANGE: CHECK constraints the seed left to the application.
    CONSTRAINT memories_content_not_blank CHECK (btrim(content) <> ''),
    CONSTRAINT memories_content_size CHECK (length(content) <= 100000),
    CONSTRAINT memories_type_not_blank CHECK (btrim(memory_type) <> ''),
    CONSTRAINT memories_importance_range CHECK (importance BETWEEN 0 AND 1),
    CONSTRAINT memories_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT memories_embedding_dim CHECK (vector_dims(embedding) = embedding_dim)
);

CREATE TABLE memory_relationships (
    tenant_id          uuid NOT NULL,
    id                 uuid NOT NULL DEFAULT gen_random_uuid(),
    source_memory_id   uuid NOT NULL,
    target_memory_id   uuid NOT NULL,
    relationship_type  varchar(50) NOT NULL,
    strength           numeric(3, 2) NOT NULL DEFAULT 0.5,
    created_at         timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, source_memory_id, target_memory_id, relationship_type),
    -- CHANGE: both ends reference (tenant_id, id). The seed's policy checked only the source, so
    -- a relationship could point at another tenant's memory; here the database refuses it.
    FOREIGN KEY (tenant_id, source_memory_id) REFERENCES memories (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, target_memory_id) REFERENCES memories (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT relationships_type_not_blank CHECK (btrim(relationship_type) <> ''),
    CONSTRAINT relationships_strength_range CHECK (strength BETWEEN 0 AND 1),
    CONSTRAINT relationships_not_to_self CHECK (source_memory_id <> target_memory_id)
);

-- Indexes ------------------------------------------------------------------------------------

-- CHANGE: one partial HNSW cosine index per dimension, on (embedding::vector(N)), pgvector's
-- documented way to index a column that mixes dimensions; searches use the same expression.
-- The seed's `ivfflat ... WITH (lists = 100)` was created on an empty table: IVFFlat learns its
-- list centres from the rows present at build time, so built empty its lists are meaningless and
-- recall collapses as rows arrive (docs/BENCHMARKS.md measures it). HNSW needs no training data,
-- stays correct as rows are added, and with pgvector 0.8's iterative scans keeps returning k rows
-- under the store and expiry filters.
CREATE INDEX memories_embedding_256_hnsw ON memories
    USING hnsw ((embedding::vector(256)) vector_cosine_ops) WHERE embedding_dim = 256;
CREATE INDEX memories_embedding_384_hnsw ON memories
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE embedding_dim = 384;
CREATE INDEX memories_embedding_512_hnsw ON memories
    USING hnsw ((embedding::vector(512)) vector_cosine_ops) WHERE embedding_dim = 512;
CREATE INDEX memories_embedding_1024_hnsw ON memories
    USING hnsw ((embedding::vector(1024)) vector_cosine_ops) WHERE embedding_dim = 1024;
CREATE INDEX memories_embedding_1536_hnsw ON memories
    USING hnsw ((embedding::vector(1536)) vector_cosine_ops) WHERE embedding_dim = 1536;

CREATE INDEX memories_store_created ON memories (tenant_id, store_id, created_at);
CREATE INDEX memories_content_tsv ON memories USING gin (content_tsv);
CREATE INDEX memories_metadata ON memories USING gin (metadata jsonb_path_ops);
CREATE INDEX memory_relationships_source ON memory_relationships (tenant_id, source_memory_id);
-- CHANGE: relationships are followed in both directions (the seed indexed only the source).
CREATE INDEX memory_relationships_target ON memory_relationships (tenant_id, target_memory_id);

-- total_memories --------------------------------------------------------------------------------

-- CHANGE: the seed incremented total_memories in a second statement outside any transaction
-- and never decremented it. Statement-level triggers with transition tables keep it exact for
-- inserts (COPY included) and deletes, whichever path makes them: the UPDATE takes the store's
-- row lock, so concurrent writers add up instead of overwriting each other.
CREATE FUNCTION memories_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE memory_stores s SET total_memories = s.total_memories + d.n
    FROM (SELECT tenant_id, store_id, count(*) AS n FROM inserted GROUP BY 1, 2 ORDER BY 1, 2) d
    WHERE s.tenant_id = d.tenant_id AND s.id = d.store_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION memories_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE memory_stores s SET total_memories = s.total_memories - d.n
    FROM (SELECT tenant_id, store_id, count(*) AS n FROM deleted GROUP BY 1, 2 ORDER BY 1, 2) d
    WHERE s.tenant_id = d.tenant_id AND s.id = d.store_id;
    RETURN NULL;
END
$$;

-- A memory does not move between stores: the counters (and the embedding model) assume it.
CREATE FUNCTION memories_store_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a memory cannot move to another store' USING ERRCODE = 'check_violation';
END
$$;

CREATE TRIGGER memories_count_inserted AFTER INSERT ON memories
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION memories_count_inserted();
CREATE TRIGGER memories_count_deleted AFTER DELETE ON memories
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION memories_count_deleted();
CREATE TRIGGER memories_store_is_fixed BEFORE UPDATE OF store_id, tenant_id ON memories
    FOR EACH ROW WHEN (OLD.store_id IS DISTINCT FROM NEW.store_id OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION memories_store_is_fixed();

-- Row-level security -----------------------------------------------------------------------------

-- CHANGE: RLS enabled AND forced on every table (forced: the owner is restrained too), and every
-- policy compares the row's own tenant_id with no subquery, for reads (USING) and writes (WITH
-- CHECK). NULLIF matters: after a transaction-local setting ends, current_setting() returns ''
-- (not NULL) for the rest of the connection's life, and ''::uuid would fail on the next pooled
-- use; with NULLIF, no tenant set means tenant_id = NULL: no row visible, every write refused.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
ALTER TABLE memory_stores ENABLE ROW LEVEL SECURITY;
ALTER TABLE memory_stores FORCE ROW LEVEL SECURITY;
ALTER TABLE memories ENABLE ROW LEVEL SECURITY;
ALTER TABLE memories FORCE ROW LEVEL SECURITY;
ALTER TABLE memory_relationships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memory_relationships FORCE ROW LEVEL SECURITY;

CREATE POLICY tenants_isolation ON tenants
    USING (id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid);
-- The owner (the role running this migration) administers tenants: it lists, creates, renames
-- and deletes them. memex_app can only SELECT, and sees only the tenant in force.
CREATE POLICY tenants_administration ON tenants TO CURRENT_USER USING (true) WITH CHECK (true);

CREATE POLICY users_isolation ON users
    USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid);
CREATE POLICY memory_stores_isolation ON memory_stores
    USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid);
CREATE POLICY memories_isolation ON memories
    USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid);
CREATE POLICY memory_relationships_isolation ON memory_relationships
    USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid);

-- Privileges of the application role -------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO memex_app;
GRANT SELECT ON tenants TO memex_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, memory_stores, memories, memory_relationships TO memex_app;
