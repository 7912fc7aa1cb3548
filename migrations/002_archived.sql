-- 002: archived memories.
--
-- Analysts curating a store need to take a memory out of retrieval without losing it: deleting
-- is irreversible, expiring changes what the memory claims about time. An archived memory stays
-- in the store, is listed and exported, and is skipped by every search mode until unarchived.
ALTER TABLE memories ADD COLUMN archived boolean NOT NULL DEFAULT false;
