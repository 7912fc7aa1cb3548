-- 012: who may open which tenant in the explorer.
--
-- Analysts (an email: from OpenID Connect, or a local account with a password hash) are members
-- of tenants with a role: viewer (reads), editor (also adds, edits, curates, imports), admin
-- (also manages the tenant's users, stores and keys). Operators manage tenants, analysts and
-- keys. The explorer connects as memex_app and cannot read these tables: PostgreSQL answers
-- which tenants an analyst may open, and enters a tenant for an analyst only through
-- memex_enter_tenant(), which sets the tenant, the role and the actor for the transaction.

CREATE TABLE analysts (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email            varchar(320) NOT NULL UNIQUE CHECK (email = lower(btrim(email)) AND email LIKE '%_@_%'),
    password_hash    text,                      -- argon2id, for local accounts; none for OpenID Connect
    operator         boolean NOT NULL DEFAULT false,
    failed_logins    integer NOT NULL DEFAULT 0,
    locked_until     timestamptz,               -- after repeated wrong passwords
    created_at       timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_login_at    timestamptz
);

CREATE TABLE memberships (
    analyst_id  uuid NOT NULL REFERENCES analysts (id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role        varchar(10) NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (analyst_id, tenant_id)
);

ALTER TABLE analysts ENABLE ROW LEVEL SECURITY;
ALTER TABLE analysts FORCE ROW LEVEL SECURITY;
ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY analysts_administration ON analysts TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY memberships_administration ON memberships TO CURRENT_USER USING (true) WITH CHECK (true);
REVOKE ALL ON analysts, memberships FROM PUBLIC;

-- The explorer's door, not the API's: memex serve's role (memex_api, migration 008) may not ask
-- who the analysts are or which tenants exist.
CREATE FUNCTION memex_refuse_api() RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF pg_has_role(session_user, 'memex_api', 'MEMBER') THEN
        RAISE EXCEPTION 'the API may not act for analysts' USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- The tenants an analyst may open, with the role in each: every tenant (as admin) for an
-- operator, the tenants of the analyst's memberships otherwise; none for an unknown email.
CREATE FUNCTION memex_analyst_tenants(who text)
RETURNS TABLE (tenant_id uuid, tenant_name text, role text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM memex_refuse_api();
    RETURN QUERY
    SELECT t.id, t.name::text, CASE WHEN a.operator THEN 'admin' ELSE m.role END::text
    FROM analysts a
    JOIN tenants t ON a.operator OR EXISTS (SELECT 1 FROM memberships x WHERE x.analyst_id = a.id AND x.tenant_id = t.id)
    LEFT JOIN memberships m ON m.analyst_id = a.id AND m.tenant_id = t.id
    WHERE a.email = lower(btrim(who))
    ORDER BY t.name;
END
$$;

-- Whether an analyst is an operator (operator pages exist only for them).
CREATE FUNCTION memex_analyst_is_operator(who text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM memex_refuse_api();
    RETURN coalesce((SELECT operator FROM analysts WHERE email = lower(btrim(who))), false);
END
$$;

-- The one door of the explorer into a tenant: the analyst must be a member (or an operator);
-- the tenant, the role and the actor are set for this transaction only, and a viewer's
-- transaction is read-only by the same policies as a read-only API key (migration 008).
CREATE FUNCTION memex_enter_tenant(who text, tenant uuid) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    granted text;
BEGIN
    SELECT t.role INTO granted FROM memex_analyst_tenants(who) t WHERE t.tenant_id = tenant;
    IF granted IS NULL THEN
        RAISE EXCEPTION 'no access to this tenant' USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('app.current_tenant_id', tenant::text, true);
    PERFORM set_config('app.analyst_role', granted, true);
    PERFORM set_config('app.read_only', CASE WHEN granted = 'viewer' THEN 'on' ELSE 'off' END, true);
    PERFORM set_config('app.actor', 'analyst ' || lower(btrim(who)), true);
    RETURN granted;
END
$$;

-- Local accounts: the password hash of an analyst (argon2id, checked in the explorer's process)
-- and whether the account is locked after wrong passwords; nothing for an unknown email.
CREATE FUNCTION memex_analyst_credentials(who text)
RETURNS TABLE (password_hash text, locked_until timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM memex_refuse_api();
    RETURN QUERY SELECT a.password_hash, a.locked_until FROM analysts a
                 WHERE a.email = lower(btrim(who)) AND a.password_hash IS NOT NULL;
END
$$;

-- Record a sign-in attempt: a success clears the count; each failure after the third locks the
-- account for twice as long as the one before (2 s, 4 s, ... up to 15 minutes).
CREATE FUNCTION memex_analyst_attempt(who text, succeeded boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM memex_refuse_api();
    IF succeeded THEN
        UPDATE analysts SET failed_logins = 0, locked_until = NULL, last_login_at = now() WHERE email = lower(btrim(who));
    ELSE
        UPDATE analysts SET failed_logins = failed_logins + 1,
            locked_until = CASE WHEN failed_logins + 1 > 3
                                THEN now() + least(interval '15 minutes', interval '1 second' * power(2, failed_logins + 1 - 3))
                           END
        WHERE email = lower(btrim(who));
    END IF;
END
$$;

-- A tenant admin manages the keys of the tenant entered (memex_enter_tenant): the explorer needs
-- no owner connection for it. Only a key's record goes out, never its hash.
CREATE FUNCTION memex_tenant_keys()
RETURNS TABLE (id uuid, name text, prefix text, user_id uuid, store_id uuid, read_only boolean, expires_at timestamptz,
               created_at timestamptz, last_used_at timestamptz, revoked_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM memex_require_tenant_admin();
    RETURN QUERY SELECT k.id, k.name::text, k.prefix::text, k.user_id, k.store_id, k.read_only, k.expires_at, k.created_at,
                        k.last_used_at, k.revoked_at
                 FROM api_keys k WHERE k.tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid
                 ORDER BY k.created_at, k.id;
END
$$;

CREATE FUNCTION memex_tenant_create_key(key_name text, key_prefix text, digest bytea, key_user uuid, key_store uuid,
                                        is_read_only boolean, expires timestamptz) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    made uuid;
BEGIN
    PERFORM memex_require_tenant_admin();
    INSERT INTO api_keys (tenant_id, name, prefix, secret_sha256, user_id, store_id, read_only, expires_at)
    VALUES (NULLIF(current_setting('app.current_tenant_id', true), '')::uuid, key_name, key_prefix, digest, key_user, key_store,
            is_read_only, expires)
    RETURNING api_keys.id INTO made;
    RETURN made;
END
$$;

CREATE FUNCTION memex_tenant_revoke_key(target uuid) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM memex_require_tenant_admin();
    UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
    WHERE id = target AND tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid;
    RETURN FOUND;
END
$$;

CREATE FUNCTION memex_require_tenant_admin() RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM memex_refuse_api();
    IF current_setting('app.analyst_role', true) IS DISTINCT FROM 'admin'
       OR NULLIF(current_setting('app.current_tenant_id', true), '') IS NULL THEN
        RAISE EXCEPTION 'only an admin of this tenant manages its keys' USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

REVOKE ALL ON FUNCTION memex_tenant_keys(), memex_tenant_create_key(text, text, bytea, uuid, uuid, boolean, timestamptz),
    memex_tenant_revoke_key(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION memex_tenant_keys(), memex_tenant_create_key(text, text, bytea, uuid, uuid, boolean, timestamptz),
    memex_tenant_revoke_key(uuid) TO memex_app;

REVOKE ALL ON FUNCTION memex_analyst_tenants(text), memex_analyst_is_operator(text), memex_enter_tenant(text, uuid),
    memex_analyst_credentials(text), memex_analyst_attempt(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION memex_analyst_tenants(text), memex_analyst_is_operator(text), memex_enter_tenant(text, uuid),
    memex_analyst_credentials(text), memex_analyst_attempt(text, boolean) TO memex_app;
