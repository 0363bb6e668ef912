-- The table `changes` of `roomstream query` and `roomstream report`: every version of every listing the
-- S3 sink committed up to the chosen snapshot's positions — one row per record of listings.v1, deletions
-- included (live = false, every column NULL but listing_id, version_clock, source_partition,
-- source_offset, region_code and gu). A listing's versions are ordered by (version_clock, source_offset).
-- `change_rows` is the same files as they are, without what this view adds or fills.
--
-- Changed here: gu is filled from region_code (table `regions`) where the version carries none.
-- Added here:
--   first_seen_at  the listing's first sighting as a KST timestamp (NULL on a deletion);
--   changed_at     when the version was published, in event time — an estimate, because a version
--                  carries input positions (version_clock), never a wall-clock time: the newest first
--                  sighting among the versions published in its 시군구 up to its clock. A region's
--                  listings share one processor partition, so their clocks share one scale, and new
--                  listings keep appearing, so this follows the processor's event-time progress; it
--                  runs late where a region saw no new listing for a while.
SELECT c.* REPLACE (COALESCE(c.gu, r.gu) AS gu),
       arrow_cast(c.first_seen, 'Timestamp(Second, Some("+09:00"))') AS first_seen_at,
       arrow_cast(
           MAX(c.first_seen) OVER (
               PARTITION BY c.region_code ORDER BY c.version_clock
               RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
           'Timestamp(Second, Some("+09:00"))') AS changed_at
FROM change_rows c
LEFT JOIN regions r ON r.region_code = c.region_code
