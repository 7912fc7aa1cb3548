-- 015: an edit's history row compares the fields themselves.
--
-- Migration 009's row trigger built the whole memory as JSON twice (before and after) and diffed
-- the two with jsonb_each, for every edited row: 260 us a row of the benchmark's store, so
-- archiving or re-weighting 20,000 memories in one call took 8-25 s. Here each field is compared
-- as itself and only what changed becomes JSON: the same {field: [old, new]} (jsonb orders keys
-- by itself, and a value converts to the same JSON either way), about half the time
-- (docs/BENCHMARKS.md). Access bookkeeping still fires nothing (UPDATE OF, migration 009).

CREATE OR REPLACE FUNCTION memories_history_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    diff jsonb := '{}';
    what text;
BEGIN
    IF OLD.content IS DISTINCT FROM NEW.content THEN
        diff := diff || jsonb_build_object('content', jsonb_build_array(OLD.content, NEW.content));
    END IF;
    IF OLD.memory_type IS DISTINCT FROM NEW.memory_type THEN
        diff := diff || jsonb_build_object('memory_type', jsonb_build_array(OLD.memory_type, NEW.memory_type));
    END IF;
    IF OLD.source IS DISTINCT FROM NEW.source THEN
        diff := diff || jsonb_build_object('source', jsonb_build_array(OLD.source, NEW.source));
    END IF;
    IF OLD.importance IS DISTINCT FROM NEW.importance THEN
        diff := diff || jsonb_build_object('importance', jsonb_build_array(OLD.importance, NEW.importance));
    END IF;
    IF OLD.metadata IS DISTINCT FROM NEW.metadata THEN
        diff := diff || jsonb_build_object('metadata', jsonb_build_array(OLD.metadata, NEW.metadata));
    END IF;
    IF OLD.expires_at IS DISTINCT FROM NEW.expires_at THEN
        diff := diff || jsonb_build_object('expires_at', jsonb_build_array(OLD.expires_at, NEW.expires_at));
    END IF;
    IF OLD.created_at IS DISTINCT FROM NEW.created_at THEN
        diff := diff || jsonb_build_object('created_at', jsonb_build_array(OLD.created_at, NEW.created_at));
    END IF;
    IF OLD.archived IS DISTINCT FROM NEW.archived THEN
        diff := diff || jsonb_build_object('archived', jsonb_build_array(OLD.archived, NEW.archived));
    END IF;
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
