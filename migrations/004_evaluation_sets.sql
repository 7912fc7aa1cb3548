-- 004: evaluation sets.
--
-- Analysts build retrieval test cases in the explorer (a query and the memories that should come
-- back for it) and rerun them after every change to the store or to the search settings, so the
-- cases live next to the store they test. Tenant tables like the others: tenant_id in every key,
-- RLS enabled and forced with the same policy, memex_app gets only DML.
CREATE TABLE evaluation_sets (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    store_id    uuid NOT NULL,
    name        varchar(100) NOT NULL CHECK (btrim(name) <> ''),
    created_at  timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, store_id, name),
    FOREIGN KEY (tenant_id, store_id) REFERENCES memory_stores (tenant_id, id) ON DELETE CASCADE
);

-- expected_ids is an array, not a foreign key: a case may expect a memory that was deleted since,
-- which is exactly what the evaluation should then report as a miss.
CREATE TABLE evaluation_cases (
    tenant_id     uuid NOT NULL,
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    set_id        uuid NOT NULL,
    query         text NOT NULL CHECK (btrim(query) <> '' AND length(query) <= 10000),
    expected_ids  uuid[] NOT NULL CHECK (cardinality(expected_ids) > 0),
    kind          varchar(50),
    created_at    timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, set_id) REFERENCES evaluation_sets (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX evaluation_cases_set ON evaluation_cases (tenant_id, set_id);

ALTER TABLE evaluation_sets ENABLE ROW LEVEL SECURITY;
ALTER TABLE evaluation_sets FORCE ROW LEVEL SECURITY;
ALTER TABLE evaluation_cases ENABLE ROW LEVEL SECURITY;
ALTER TABLE evaluation_cases FORCE ROW LEVEL SECURITY;
CREATE POLICY evaluation_sets_isolation ON evaluation_sets
    USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid);
CREATE POLICY evaluation_cases_isolation ON evaluation_cases
    USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON evaluation_sets, evaluation_cases TO memex_app;
