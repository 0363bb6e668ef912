-- Per-시군구 and per-법정동 aggregates of the listings being scored, computed in full by DataFusion: the
-- batch answer the incrementally maintained aggregates (src/process/score/groups.rs) must equal, deletions
-- included. Input `score_input` as for score.sql.
SELECT 'gu' AS level, gu AS grp, COUNT(*) AS listings, median(monthly_cost) AS median_cost,
       median(cost_m2) AS median_cost_m2
FROM score_input GROUP BY gu
UNION ALL
SELECT 'dong' AS level, dong AS grp, COUNT(*) AS listings, median(monthly_cost) AS median_cost,
       median(cost_m2) AS median_cost_m2
FROM score_input WHERE dong <> '' GROUP BY dong
ORDER BY level, grp
