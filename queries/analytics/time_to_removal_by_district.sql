-- How long listings stay up before they are taken down, by 구: for every removal (a deletion right after
-- a live version), the days from the listing's first sighting to the removal; count, median, mean and
-- longest (rounded to 0.1 day). A removal is published once K complete sweeps have missed the listing (process.removal_sweeps),
-- so it trails the real end by about K crawls.
-- New with the stream: the seed only labelled vanished Zigbang ids "sold" for its model. The removal's
-- time is the changes table's changed_at, an estimate (see tables/changes.sql).
WITH v AS (
    SELECT listing_id, live, changed_at,
           LAG(live) OVER (PARTITION BY listing_id ORDER BY version_clock, source_offset) AS prev_live,
           LAG(gu) OVER (PARTITION BY listing_id ORDER BY version_clock, source_offset) AS prev_gu,
           LAG(first_seen) OVER (PARTITION BY listing_id ORDER BY version_clock, source_offset) AS prev_first_seen
    FROM changes
), removed AS (
    SELECT COALESCE(prev_gu, '(구 미상)') AS district,
           CAST(to_unixtime(changed_at) - prev_first_seen AS DOUBLE) / 86400.0 AS days
    FROM v
    WHERE NOT live AND prev_live
)
SELECT district,
       COUNT(*) AS removals,
       ROUND(median(days), 1) AS median_days,
       ROUND(AVG(days), 1) AS avg_days,
       ROUND(MAX(days), 1) AS max_days
FROM removed
GROUP BY district
ORDER BY median_days, district
