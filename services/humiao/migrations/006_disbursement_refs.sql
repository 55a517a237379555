-- A disbursement's own fact row carries `ref` = 'd:<disbursement id>' (the facts_ref
-- index covers it), and child_refs no longer gets a 'd:' row per payment: a reversal
-- finds the child it concerns through that row. One index entry per payment instead of
-- a child_refs row and its two index entries: payments are most of the traffic.
-- Rows written before this keep working: 'd:' rows still in child_refs are still read,
-- and reversals are told from disbursements by child_key (NULL for a reversal).
SELECT 1;
