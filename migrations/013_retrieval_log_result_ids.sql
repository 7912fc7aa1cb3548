-- 013: the retrieval log's index of which memories an entry returned holds their ids only.
--
-- "Retrieved N times" and the Retrievals page's memory filter ask which entries returned a memory.
-- Migration 009 answered with a GIN index over the whole `results` (jsonb_path_ops): every key
-- and value of every result (rank, score, similarity, the score breakdown), ~80 index entries a
-- search, written by every search's log INSERT. The question only needs the ids: 10 entries a
-- search, and an index several times smaller (docs/BENCHMARKS.md, issue 11).

DROP INDEX retrieval_log_results;
CREATE INDEX retrieval_log_result_ids ON retrieval_log USING gin ((jsonb_path_query_array(results, '$[*].id')) jsonb_path_ops);
