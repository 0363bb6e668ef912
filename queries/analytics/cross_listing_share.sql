-- How many of each platform's live listings are also on the other platform (the same flat, merged by the
-- processor's resolve stage), and the share; the row 'all' is every listing, its share the listings on
-- both.
-- New with the stream: the seed's dedup merged on exact raw strings and almost never matched across
-- platforms, so it could not say this.
WITH p AS (
    SELECT 'zigbang' AS platform, platforms FROM listings WHERE platforms LIKE '%zigbang%'
    UNION ALL
    SELECT 'dabang' AS platform, platforms FROM listings WHERE platforms LIKE '%dabang%'
    UNION ALL
    SELECT 'all' AS platform, platforms FROM listings
)
SELECT platform,
       COUNT(*) AS listings,
       SUM(CASE WHEN platforms LIKE '%,%' THEN 1 ELSE 0 END) AS cross_listed,
       ROUND(CAST(SUM(CASE WHEN platforms LIKE '%,%' THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*), 4) AS share
FROM p
GROUP BY platform
ORDER BY CASE platform WHEN 'zigbang' THEN 0 WHEN 'dabang' THEN 1 ELSE 2 END
