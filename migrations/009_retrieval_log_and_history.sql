-- 009: every retrieval and every change on record.
--
-- The retrieval log keeps what each search asked and got (with the best results it cut), so an
-- analyst can see later what an agent retrieved, and replay it against today's memories. Memory
-- history is written by the database itself, whatever path changes a memory (the service, COPY,
-- a merge, raw SQL as memex_app): the application role can read it but never write or delete
-- it, except through the two functions at the end (a purge, the right to be forgotten; pruning).

-- Retrieval log ------------------------------------------------------------------------------------

ALTER TABLE memory_stores
    ADD COLUMN log_retention_days integer CHECK (log_retention_days > 0) DEFAULT 90,
    ADD COLUMN log_retention_entries integer CHECK (log_retention_entries > 0);

CREATE TABLE retrieval_log (
    tenant_id    uuid NOT NULL,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    store_id     uuid NOT NULL,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    interface    varchar(20) NOT NULL,        -- python, cli, api, mcp, explorer
    key_id       uuid,                        -- the API key that searched, if any (no foreign key: the log outlives it)
    key_name     varchar(100),
    actor        text NOT NULL,               -- who, in words: the key's name, an analyst, the CLI
    query        text NOT NULL,
    mode         varchar(20) NOT NULL,
    params       jsonb NOT NULL,              -- every setting that decides the answer
    model        varchar(120) NOT NULL,       -- the store's embedding model and dimension then
    results      jsonb NOT NULL,              -- [{id, rank, score, similarity, breakdown}]
    near_misses  jsonb NOT NULL,              -- the best ones the threshold or the limit cut
    result_count integer NOT NULL,
    latency_ms   real NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (id),
    FOREIGN KEY (tenant_id, store_id) REFERENCES memory_stores (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT retrieval_log_lists CHECK (jsonb_typeof(results) = 'array' AND jsonb_typeof(near_misses) = 'array')
);
CREATE INDEX retrieval_log_store_at ON retrieval_log (tenant_id, store_id, at DESC);
-- "retrieved N times, last for ...": entries whose results hold a memory
CREATE INDEX retrieval_log_results ON retrieval_log USING gin (results jsonb_path_ops);

ALTER TABLE retrieval_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE retrieval_log FORCE ROW LEVEL SECURITY;
CREATE POLICY retrieval_log_isolation ON retrieval_log
    USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid);
CREATE POLICY retrieval_log_key_scope ON retrieval_log AS RESTRICTIVE
    USING ((SELECT memex_key_unscoped()) OR store_id IN (SELECT s.id FROM memory_stores s));
-- a read-only key's searches are logged; it may not delete or rewrite the log
CREATE POLICY retrieval_log_read_only_update ON retrieval_log AS RESTRICTIVE FOR UPDATE TO memex_app
    USING (current_setting('app.read_only', true) IS DISTINCT FROM 'on');
CREATE POLICY retrieval_log_read_only_delete ON retrieval_log AS RESTRICTIVE FOR DELETE TO memex_app
    USING (current_setting('app.read_only', true) IS DISTINCT FROM 'on');
-- the owner finds an entry's tenant (memex log show ID) as it finds a tenant by name
CREATE POLICY retrieval_log_administration ON retrieval_log FOR SELECT TO CURRENT_USER USING (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON retrieval_log TO memex_app;

-- Evaluation runs: each run of a set, so a change that hurts recall shows over time -------------------

CREATE TABLE evaluation_runs (
    tenant_id  uuid NOT NULL,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    set_id     uuid NOT NULL,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor      text NOT NULL,
    config     jsonb NOT NULL,               -- the configuration's name, mode, threshold, MMR
    metrics    jsonb NOT NULL,               -- averaged over the cases
    by_kind    jsonb NOT NULL,               -- the same per kind of case
    model      varchar(120) NOT NULL,
    cases      integer NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, set_id) REFERENCES evaluation_sets (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX evaluation_runs_set_at ON evaluation_runs (tenant_id, set_id, at);
ALTER TABLE evaluation_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE evaluation_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY evaluation_runs_isolation ON evaluation_runs
    USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid);
CREATE POLICY evaluation_runs_key_scope ON evaluation_runs AS RESTRICTIVE
    USING ((SELECT memex_key_unscoped()) OR set_id IN (SELECT e.id FROM evaluation_sets e));
CREATE POLICY evaluation_runs_read_only_insert ON evaluation_runs AS RESTRICTIVE FOR INSERT TO memex_app
    WITH CHECK (current_setting('app.read_only', true) IS DISTINCT FROM 'on');
CREATE POLICY evaluation_runs_read_only_delete ON evaluation_runs AS RESTRICTIVE FOR DELETE TO memex_app
    USING (current_setting('app.read_only', true) IS DISTINCT FROM 'on');
GRANT SELECT, INSERT, DELETE ON evaluation_runs TO memex_app;

-- Memory history ------------------------------------------------------------------------------------

CREATE TABLE memory_history (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    memory_id    uuid NOT NULL,                -- no foreign key: the history outlives a deleted memory
    store_id     uuid NOT NULL,
    version      integer NOT NULL,             -- 1, 2, ... per memory, in the order things happened
    event        varchar(20) NOT NULL
                 CHECK (event IN ('created', 'updated', 'archived', 'unarchived', 'expired', 'merged', 'deleted', 'restored')),
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor        text NOT NULL,
    -- what changed, {field: [old, new]} (the vector as a flag: it is derived from the content)
    changes      jsonb NOT NULL DEFAULT '{}',
    -- the memory as it was just before it went (deleted, merged): what a restore brings back
    snapshot     jsonb,
    merged_into  uuid,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, memory_id, version)
);
CREATE INDEX memory_history_store ON memory_history (tenant_id, store_id, at DESC);

ALTER TABLE memory_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE memory_history FORCE ROW LEVEL SECURITY;
CREATE POLICY memory_history_isolation ON memory_history
    USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid);
CREATE POLICY memory_history_key_scope ON memory_history AS RESTRICTIVE
    USING ((SELECT memex_key_unscoped()) OR store_id IN (SELECT s.id FROM memory_stores s));
-- memex_app reads history; only the trigger functions below (the owner's, under the same policies:
-- the tenant in force, the key's scope) write it, and the two functions at the end delete from it
GRANT SELECT ON memory_history TO memex_app;

-- Who acts: what the service set for this transaction, else the database role itself (raw SQL).
CREATE FUNCTION memex_actor() RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
    SELECT coalesce(NULLIF(current_setting('app.actor', true), ''), 'sql as ' || session_user)
$$;

-- The fields a caller writes, as JSON (the vector left out: it follows the content).
CREATE FUNCTION memex_memory_fields(m memories) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'id', m.id, 'store_id', m.store_id, 'content', m.content, 'memory_type', m.memory_type, 'source', m.source,
        'importance', m.importance, 'metadata', m.metadata, 'expires_at', m.expires_at, 'created_at', m.created_at,
        'archived', m.archived, 'access_count', m.access_count, 'last_accessed', m.last_accessed)
$$;

-- Created: one row per memory, a statement at a time (COPY imports write thousands at once).
-- `app.history_event` = 'restored' marks the re-insert of a deleted memory by a restore.
CREATE FUNCTION memories_history_created() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO memory_history (tenant_id, memory_id, store_id, version, event, actor)
    SELECT n.tenant_id, n.id, n.store_id,
           coalesce((SELECT max(h.version) FROM memory_history h WHERE h.tenant_id = n.tenant_id AND h.memory_id = n.id), 0) + 1,
           CASE WHEN current_setting('app.history_event', true) = 'restored' THEN 'restored' ELSE 'created' END,
           memex_actor()
    FROM inserted n;
    RETURN NULL;
END
$$;

-- Changed: one row per memory whose fields changed. Access bookkeeping (access_count,
-- last_accessed) is usage, not history: the trigger does not even fire for it (UPDATE OF).
CREATE FUNCTION memories_history_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    old_fields jsonb := memex_memory_fields(OLD) - 'access_count' - 'last_accessed';
    new_fields jsonb := memex_memory_fields(NEW) - 'access_count' - 'last_accessed';
    diff jsonb;
    what text;
BEGIN
    SELECT coalesce(jsonb_object_agg(key, jsonb_build_array(old_fields -> key, value)), '{}')
    INTO diff FROM jsonb_each(new_fields) WHERE old_fields -> key IS DISTINCT FROM value;
    IF OLD.embedding IS DISTINCT FROM NEW.embedding THEN
        diff := diff || jsonb_build_object('embedding', jsonb_build_array('before', 'after'));
    END IF;
    IF diff = '{}' THEN
        RETURN NULL;
    END IF;
    what := CASE
        WHEN current_setting('app.history_event', true) = 'restored' THEN 'restored'
        WHEN OLD.archived <> NEW.archived THEN CASE WHEN NEW.archived THEN 'archived' ELSE 'unarchived' END
        WHEN NEW.expires_at <= now() AND (OLD.expires_at IS NULL OR OLD.expires_at > now()) THEN 'expired'
        ELSE 'updated' END;
    INSERT INTO memory_history (tenant_id, memory_id, store_id, version, event, actor, changes)
    VALUES (NEW.tenant_id, NEW.id, NEW.store_id,
            coalesce((SELECT max(h.version) FROM memory_history h WHERE h.tenant_id = NEW.tenant_id AND h.memory_id = NEW.id), 0) + 1,
            what, memex_actor(), diff);
    RETURN NULL;
END
$$;

-- Deleted (or merged away: `app.merged_into` names the memory it was folded into), with the
-- memory as it was, so a restore can bring it back. The memories of a store being deleted leave
-- nothing: the store's whole history goes with it (memory_stores_history_gone below).
CREATE FUNCTION memories_history_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO memory_history (tenant_id, memory_id, store_id, version, event, actor, snapshot, merged_into)
    SELECT o.tenant_id, o.id, o.store_id,
           coalesce((SELECT max(h.version) FROM memory_history h WHERE h.tenant_id = o.tenant_id AND h.memory_id = o.id), 0) + 1,
           CASE WHEN NULLIF(current_setting('app.merged_into', true), '') IS NULL THEN 'deleted' ELSE 'merged' END,
           memex_actor(), memex_memory_fields(o), NULLIF(current_setting('app.merged_into', true), '')::uuid
    FROM deleted o
    WHERE EXISTS (SELECT 1 FROM memory_stores s WHERE s.tenant_id = o.tenant_id AND s.id = o.store_id)
      AND current_setting('app.purging', true) IS DISTINCT FROM 'on';
    RETURN NULL;
END
$$;

CREATE TRIGGER memories_history_created AFTER INSERT ON memories
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION memories_history_created();
CREATE TRIGGER memories_history_changed
    AFTER UPDATE OF content, embedding, memory_type, source, importance, metadata, expires_at, created_at, archived ON memories
    FOR EACH ROW EXECUTE FUNCTION memories_history_changed();
CREATE TRIGGER memories_history_deleted AFTER DELETE ON memories
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION memories_history_deleted();

CREATE FUNCTION memory_stores_history_gone() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    DELETE FROM memory_history h USING gone g WHERE h.tenant_id = g.tenant_id AND h.store_id = g.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER memory_stores_history_gone AFTER DELETE ON memory_stores
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION memory_stores_history_gone();

-- The right to be forgotten: the memory, its history and every mention in the retrieval log go.
-- Returns how many rows of each it removed. Row-level security applies (the tenant in force,
-- the key's scope), so only what the caller may see can be purged.
CREATE FUNCTION memex_purge_memory(target uuid) RETURNS TABLE (memories integer, history integer, log_entries integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    m integer;
    h integer;
    l integer;
    mention jsonb := jsonb_build_array(jsonb_build_object('id', target));
BEGIN
    PERFORM memex_require_signed_scope();
    IF current_setting('app.read_only', true) = 'on' THEN
        RAISE EXCEPTION 'this API key is read-only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('app.purging', 'on', true);
    DELETE FROM memories WHERE id = target;
    GET DIAGNOSTICS m = ROW_COUNT;
    PERFORM set_config('app.purging', 'off', true);
    DELETE FROM memory_history WHERE memory_id = target;
    GET DIAGNOSTICS h = ROW_COUNT;
    UPDATE retrieval_log SET
        results = (SELECT coalesce(jsonb_agg(e), '[]') FROM jsonb_array_elements(results) e WHERE e ->> 'id' <> target::text),
        near_misses = (SELECT coalesce(jsonb_agg(e), '[]') FROM jsonb_array_elements(near_misses) e WHERE e ->> 'id' <> target::text)
    WHERE results @> mention OR near_misses @> mention;
    GET DIAGNOSTICS l = ROW_COUNT;
    RETURN QUERY SELECT m, h, l;
END
$$;
REVOKE ALL ON FUNCTION memex_purge_memory(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION memex_purge_memory(uuid) TO memex_app;

-- Pruning: history older than a time, of the tenant in force (and the key's scope). A deleted
-- memory whose history is pruned can no longer be restored.
CREATE FUNCTION memex_prune_history(older_than timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    n integer;
BEGIN
    PERFORM memex_require_signed_scope();
    IF current_setting('app.read_only', true) = 'on' THEN
        RAISE EXCEPTION 'this API key is read-only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM memory_history WHERE at < older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION memex_prune_history(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION memex_prune_history(timestamptz) TO memex_app;

-- memex serve's role needs the scope memex_authenticate signed here too (migration 008).
CREATE POLICY retrieval_log_api_signed ON retrieval_log AS RESTRICTIVE TO memex_api
    USING ((SELECT memex_scope_signed())) WITH CHECK ((SELECT memex_scope_signed()));
CREATE POLICY evaluation_runs_api_signed ON evaluation_runs AS RESTRICTIVE TO memex_api
    USING ((SELECT memex_scope_signed())) WITH CHECK ((SELECT memex_scope_signed()));
CREATE POLICY memory_history_api_signed ON memory_history AS RESTRICTIVE TO memex_api
    USING ((SELECT memex_scope_signed())) WITH CHECK ((SELECT memex_scope_signed()));
