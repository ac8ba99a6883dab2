-- The day a batch's CVs read "Present" as: the batch's submission day (from ingest's event), recorded by
-- its first candidate so that every CV of the batch, and any re-scoring, counts years the same way.
-- Batches recorded before keep the day the matcher first saw them.
ALTER TABLE batches ADD COLUMN as_of date;
UPDATE batches SET as_of = (created_at AT TIME ZONE 'UTC')::date;
ALTER TABLE batches ALTER COLUMN as_of SET NOT NULL;
