-- Whole-ID reads (issue 14): the audit row of a read names every ID number it returned
-- or looked up (the child's and the adults': parents, guardians, payees). The table is
-- for supervisors and operators only: the desk API never returns this column, and no
-- log carries it. The (actor, at) index serves the per-staff hourly limit of such reads.
ALTER TABLE desk_audit ADD COLUMN IF NOT EXISTS whole_ids text[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS desk_audit_actor_at ON desk_audit (actor, at);
