-- How many asking prices changed each week (KST weeks from Monday): a version of a listing whose 보증금
-- or 월세 differs from the version just before it, while the listing stayed live (a relisting at a new
-- price is not counted). increases / decreases by the monthly cost the change makes, 월세 + 보증금 × 5 %
-- / 12 (the seed's deposit/20/12); avg_cost_change in 만원 a month.
-- New with the stream: the seed's daily full replace kept no history. The week comes from the changes
-- table's changed_at, an estimate (see tables/changes.sql); changes between two publications of a
-- listing are seen as one.
WITH v AS (
    SELECT listing_id, live, deposit, rent, changed_at,
           LAG(live) OVER (PARTITION BY listing_id ORDER BY version_clock, source_offset) AS prev_live,
           LAG(deposit) OVER (PARTITION BY listing_id ORDER BY version_clock, source_offset) AS prev_deposit,
           LAG(rent) OVER (PARTITION BY listing_id ORDER BY version_clock, source_offset) AS prev_rent
    FROM changes
), moved AS (
    SELECT listing_id, changed_at,
           CAST(rent - prev_rent AS DOUBLE) + CAST(deposit - prev_deposit AS DOUBLE) / 240.0 AS cost_change
    FROM v
    WHERE live AND prev_live AND (deposit <> prev_deposit OR rent <> prev_rent)
)
SELECT date_trunc('week', changed_at) AS week,
       COUNT(*) AS price_changes,
       COUNT(DISTINCT listing_id) AS listings_changed,
       SUM(CASE WHEN cost_change > 0 THEN 1 ELSE 0 END) AS increases,
       SUM(CASE WHEN cost_change < 0 THEN 1 ELSE 0 END) AS decreases,
       ROUND(AVG(cost_change), 2) AS avg_cost_change
FROM moved
GROUP BY date_trunc('week', changed_at)
ORDER BY week
