-- How many live listings are on each floor: 반지하, 1층, 2층, …, 옥탑방 (지하 n층 below ground), lowest
-- first.
-- Replaces the seed's analytics.property_floor_count(floor, property_count), with its labels (반지층 →
-- 반지하, digits → 'N층', 옥탑 → 옥탑방) and, like it, without the listings whose exact floor is hidden
-- (저/중/고 bands) or unknown.
WITH f AS (
    SELECT CASE
               WHEN floor_kind = 'semi_basement' THEN '반지하'
               WHEN floor_kind = 'rooftop' THEN '옥탑방'
               WHEN floor_level < 0 THEN '지하 ' || CAST(-floor_level AS VARCHAR) || '층'
               ELSE CAST(floor_level AS VARCHAR) || '층'
           END AS floor,
           CASE
               WHEN floor_kind = 'semi_basement' THEN -0.5
               WHEN floor_kind = 'rooftop' THEN 1000.0
               ELSE CAST(floor_level AS DOUBLE)
           END AS sort_key
    FROM listings
    WHERE floor_kind IN ('semi_basement', 'rooftop')
       OR (floor_kind = 'level' AND floor_level IS NOT NULL)
)
SELECT floor, COUNT(*) AS property_count
FROM f
GROUP BY floor, sort_key
ORDER BY sort_key
