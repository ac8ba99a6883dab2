-- candidates.republishes: how many times the reconciler published `ingest.candidate.ingested` again for a
-- candidate the matcher never answered. Past INGEST_MAX_REPUBLISHES the candidate gets `match_failed`, so
-- every accepted batch reaches a terminal state even when the matcher keeps losing (or refusing) it.
ALTER TABLE candidates ADD COLUMN republishes integer NOT NULL DEFAULT 0;
