-- 008: API keys bound to a tenant inside PostgreSQL, and the scope a key gives a transaction.
--
-- An agent reaches memex over HTTP or MCP with a key. The key decides the tenant, and PostgreSQL
-- enforces it: the API process connects as memex_app, which cannot read this table; it presents
-- the key to memex_authenticate(), a function owned by the schema owner, which checks it and sets
-- the tenant, the key's user/store scope and its read-only flag for the current transaction only.
-- The policies below then restrict every table to that scope, whatever the Python code asks.

CREATE TABLE api_keys (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    name          varchar(100) NOT NULL DEFAULT '' ,
    -- the visible start of the key ("mx_" and 8 characters), to tell keys apart in a list
    prefix        varchar(16) NOT NULL,
    -- SHA-256 of the whole key: the key itself is shown once, at creation, and never stored
    secret_sha256 bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    user_id       uuid,
    store_id      uuid,
    read_only     boolean NOT NULL DEFAULT false,
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (id),
    -- a key bound to a user or store dies with it: a dangling scope must never widen to the tenant
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, store_id) REFERENCES memory_stores (tenant_id, id) ON DELETE CASCADE
);

-- Only the owner sees keys (operators create and revoke them with the owner connection);
-- memex_app has no privilege on the table at all.
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY api_keys_administration ON api_keys TO CURRENT_USER USING (true) WITH CHECK (true);
REVOKE ALL ON api_keys FROM PUBLIC;

-- The API's own role. `memex serve` connects as it (a login role granted memex_api), never as
-- memex_app: every statement it runs must carry a scope that memex_authenticate() signed for
-- this transaction (the restrictive policies at the end). Setting the tenant, lifting read-only
-- or widening the store scope with set_config() then leaves it nothing to read or write, even
-- if the API process itself is made to run SQL of an attacker's choosing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'memex_api') THEN
        CREATE ROLE memex_api NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT;
    END IF;
    IF NOT pg_has_role('memex_api', 'memex_app', 'MEMBER') THEN
        GRANT memex_app TO memex_api;  -- the embedded server's bootstrap has done it as superuser
    END IF;
END
$$;

-- The key of the scope signatures: random, the owner's alone. HMAC-SHA256 is computed with the
-- built-in sha256() (pgcrypto is not everywhere); the inner and outer keys are kept precomputed.
CREATE TABLE memex_scope_key (
    id         integer PRIMARY KEY CHECK (id = 1),
    inner_key  bytea NOT NULL,
    outer_key  bytea NOT NULL
);
ALTER TABLE memex_scope_key ENABLE ROW LEVEL SECURITY;
ALTER TABLE memex_scope_key FORCE ROW LEVEL SECURITY;
CREATE POLICY memex_scope_key_owner ON memex_scope_key TO CURRENT_USER USING (true) WITH CHECK (true);
REVOKE ALL ON memex_scope_key FROM PUBLIC;
DO $$
DECLARE
    secret bytea := sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8'))
                    || '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    inner_key bytea := secret;
    outer_key bytea := secret;
BEGIN
    FOR i IN 0 .. 63 LOOP
        inner_key := set_byte(inner_key, i, get_byte(secret, i) # 54);  -- 0x36
        outer_key := set_byte(outer_key, i, get_byte(secret, i) # 92);  -- 0x5c
    END LOOP;
    INSERT INTO memex_scope_key VALUES (1, inner_key, outer_key);
END
$$;

-- The signature of this transaction's scope: tenant, key user, key store, read-only, bound to
-- this connection and this transaction (its start time), so it is worth nothing anywhere else.
CREATE FUNCTION memex_scope_signature() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT encode(sha256(k.outer_key || sha256(k.inner_key || convert_to(concat_ws('|',
        current_setting('app.current_tenant_id', true), current_setting('app.key_user_id', true),
        current_setting('app.key_store_id', true), current_setting('app.read_only', true),
        pg_backend_pid(), extract(epoch FROM now())), 'UTF8'))), 'hex')
    FROM memex_scope_key k WHERE k.id = 1
$$;
REVOKE ALL ON FUNCTION memex_scope_signature() FROM PUBLIC;

-- Whether this transaction's scope is the one memex_authenticate() signed.
CREATE FUNCTION memex_scope_signed() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT coalesce(current_setting('app.scope_signature', true) = memex_scope_signature(), false)
$$;

-- In the functions below that run with the owner's rights: an API connection must hold a
-- signed scope there too (the policies of the tables do not look at the owner).
CREATE FUNCTION memex_require_signed_scope() RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF pg_has_role(session_user, 'memex_api', 'MEMBER') AND NOT memex_scope_signed() THEN
        RAISE EXCEPTION 'this connection holds no scope signed by memex_authenticate' USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- The one door: check a presented key, set the transaction's scope, say who the caller is.
-- Unknown, revoked and expired keys raise the same error (SQLSTATE 28000) by the same path.
CREATE FUNCTION memex_authenticate(presented text)
RETURNS TABLE (key_id uuid, tenant_id uuid, key_name text, user_id uuid, store_id uuid, read_only boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    k api_keys%ROWTYPE;
BEGIN
    SELECT * INTO k FROM api_keys a WHERE a.secret_sha256 = sha256(convert_to(presented, 'UTF8'));
    IF NOT FOUND OR k.revoked_at IS NOT NULL OR (k.expires_at IS NOT NULL AND k.expires_at <= now()) THEN
        RAISE EXCEPTION 'invalid API key' USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    PERFORM set_config('app.current_tenant_id', k.tenant_id::text, true);
    PERFORM set_config('app.key_user_id', coalesce(k.user_id::text, ''), true);
    PERFORM set_config('app.key_store_id', coalesce(k.store_id::text, ''), true);
    PERFORM set_config('app.read_only', CASE WHEN k.read_only THEN 'on' ELSE 'off' END, true);
    PERFORM set_config('app.actor', 'key ' || k.id::text || ' ' || k.name, true);
    PERFORM set_config('app.scope_signature', memex_scope_signature(), true);
    -- last use to the minute: one write a minute per key, not one per request
    IF k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute' THEN
        UPDATE api_keys a SET last_used_at = now() WHERE a.id = k.id;
    END IF;
    RETURN QUERY SELECT k.id, k.tenant_id, k.name::text, k.user_id, k.store_id, k.read_only;
END
$$;
REVOKE ALL ON FUNCTION memex_authenticate(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION memex_authenticate(text) TO memex_app;

-- Usage bookkeeping is the one write a read-only key causes: a search counts the accesses of what
-- it returns. It goes through this function (the owner's rights, the same tenant and key scope,
-- rows locked in id order as every multi-row write), so the read-only policies below can refuse
-- every other change to memories.
CREATE FUNCTION memex_record_access(ids uuid[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM memex_require_signed_scope();
    UPDATE memories SET access_count = access_count + 1, last_accessed = now()
    WHERE id IN (SELECT id FROM memories WHERE id = ANY(ids) ORDER BY id FOR UPDATE);
END
$$;
REVOKE ALL ON FUNCTION memex_record_access(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION memex_record_access(uuid[]) TO memex_app;

-- True when no key scope is in force. Called as a scalar subquery in the policies below, so
-- PostgreSQL evaluates it once per statement (an InitPlan), not once per row.
CREATE FUNCTION memex_key_unscoped() RETURNS boolean LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
    SELECT NULLIF(current_setting('app.key_user_id', true), '') IS NULL
       AND NULLIF(current_setting('app.key_store_id', true), '') IS NULL
$$;

-- Scope policies: RESTRICTIVE, so they narrow the tenant isolation policies and never widen them.
-- With no key scope in force (the CLI, the explorer, a key of the whole tenant) each is true.
-- current_setting(..., true) is '' once a transaction-local setting has ended: NULLIF makes that
-- "no scope" rather than a cast error.
CREATE POLICY users_key_scope ON users AS RESTRICTIVE
    USING (NULLIF(current_setting('app.key_user_id', true), '') IS NULL
           OR id = NULLIF(current_setting('app.key_user_id', true), '')::uuid);
CREATE POLICY memory_stores_key_scope ON memory_stores AS RESTRICTIVE
    USING ((NULLIF(current_setting('app.key_user_id', true), '') IS NULL
            OR user_id = NULLIF(current_setting('app.key_user_id', true), '')::uuid)
       AND (NULLIF(current_setting('app.key_store_id', true), '') IS NULL
            OR id = NULLIF(current_setting('app.key_store_id', true), '')::uuid));
-- A memory is in scope when its store is: the subquery is uncorrelated, so PostgreSQL runs it once
-- per statement (and not at all when no scope is in force), under memory_stores' own policies.
CREATE POLICY memories_key_scope ON memories AS RESTRICTIVE
    USING ((SELECT memex_key_unscoped())
           OR store_id IN (SELECT s.id FROM memory_stores s));
CREATE POLICY memory_relationships_key_scope ON memory_relationships AS RESTRICTIVE
    USING ((SELECT memex_key_unscoped())
           OR (EXISTS (SELECT 1 FROM memories m WHERE m.tenant_id = memory_relationships.tenant_id AND m.id = source_memory_id)
               AND EXISTS (SELECT 1 FROM memories m WHERE m.tenant_id = memory_relationships.tenant_id AND m.id = target_memory_id)));
CREATE POLICY evaluation_sets_key_scope ON evaluation_sets AS RESTRICTIVE
    USING ((SELECT memex_key_unscoped())
           OR store_id IN (SELECT s.id FROM memory_stores s));
CREATE POLICY evaluation_cases_key_scope ON evaluation_cases AS RESTRICTIVE
    USING ((SELECT memex_key_unscoped())
           OR set_id IN (SELECT e.id FROM evaluation_sets e));

-- Read-only keys: no INSERT, UPDATE or DELETE by memex_app anywhere (usage goes through
-- memex_record_access above). One restrictive policy per table and command.
DO $$
DECLARE
    t text;
    cmd text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'memory_stores', 'memories', 'memory_relationships', 'evaluation_sets', 'evaluation_cases'] LOOP
        FOREACH cmd IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE'] LOOP
            EXECUTE format(
                'CREATE POLICY %I ON %I AS RESTRICTIVE FOR %s TO memex_app %s',
                t || '_read_only_' || lower(cmd), t, cmd,
                CASE cmd
                    WHEN 'INSERT' THEN 'WITH CHECK (current_setting(''app.read_only'', true) IS DISTINCT FROM ''on'')'
                    WHEN 'UPDATE' THEN 'USING (current_setting(''app.read_only'', true) IS DISTINCT FROM ''on'')'
                                       ' WITH CHECK (current_setting(''app.read_only'', true) IS DISTINCT FROM ''on'')'
                    ELSE 'USING (current_setting(''app.read_only'', true) IS DISTINCT FROM ''on'')'
                END);
        END LOOP;
    END LOOP;
END
$$;

-- Readiness without the owner's rights: the API process (memex_app only) asks which migrations
-- are applied, to say whether the schema is the one it was built for.
CREATE FUNCTION memex_applied_migrations() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT version FROM schema_migrations ORDER BY version;
$$;
REVOKE ALL ON FUNCTION memex_applied_migrations() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION memex_applied_migrations() TO memex_app;

-- The API's role reads and writes nothing without a signed scope, on every table memex_app may
-- touch (a test holds every later table to it too).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'users', 'memory_stores', 'memories', 'memory_relationships', 'evaluation_sets', 'evaluation_cases'] LOOP
        EXECUTE format('CREATE POLICY %I ON %I AS RESTRICTIVE TO memex_api USING ((SELECT memex_scope_signed()))'
                       ' WITH CHECK ((SELECT memex_scope_signed()))', t || '_api_signed', t);
    END LOOP;
END
$$;
