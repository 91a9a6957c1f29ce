-- The ids of the records a limited export holds (`,id,id,…,`), so that erasing a record (a
-- data-subject deletion, a retention purge) ends the exports still holding it. NULL for an
-- archive, which holds every record of its tenant, and for exports made before this column.
ALTER TABLE exports ADD COLUMN record_ids TEXT;
