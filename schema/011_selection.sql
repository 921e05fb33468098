-- ttfb-lab schema v11: how a pre-submit's workflows were chosen by their footprints
-- (server/scheduler/select.hpp): [{workflow, chosen, reason, touched, footprint_files}], one per
-- workflow of the repository; NULL when the workflows were named, or every one ran.

ALTER TABLE experiments ADD COLUMN selection jsonb CHECK (selection IS NULL OR jsonb_typeof(selection) = 'array');
