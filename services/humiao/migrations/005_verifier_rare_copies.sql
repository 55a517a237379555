-- Reversals and retractions (fact_copies refs 'd:' and 'e:') are rare: a verifier loads
-- a partition's set at once (then keeps it up to date in memory) instead of by ref.
-- `rare` marks them, with a partial index per partition.
ALTER TABLE fact_copies ADD COLUMN IF NOT EXISTS rare boolean NOT NULL DEFAULT false;
UPDATE fact_copies SET rare = true WHERE left(ref, 2) IN ('d:', 'e:') AND NOT rare;
CREATE INDEX IF NOT EXISTS fact_copies_rare ON fact_copies (part) WHERE rare;
