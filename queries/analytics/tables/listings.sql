-- The table `listings` of `roomstream query` and `roomstream report`: the live listings of the chosen
-- snapshot (the newest complete one, or `--snapshot N`), one row per canonical listing, in the columns of
-- the S3 sink's Parquet (src/sink/table.rs; money in 만원, areas in m², distances in metres).
-- `snapshot` is the same files unfiltered: deleted listings stay in a snapshot as rows with live = false.
-- Changed here: gu, the 구 name, is filled from region_code (table `regions`) where the listing carries
-- none (a Dabang-only listing names its 동, not its 구).
-- Added here: first_seen_at, the first sighting (first_seen, Unix seconds) as a KST timestamp.
SELECT s.* REPLACE (COALESCE(s.gu, r.gu) AS gu),
       arrow_cast(s.first_seen, 'Timestamp(Second, Some("+09:00"))') AS first_seen_at
FROM snapshot s
LEFT JOIN regions r ON r.region_code = s.region_code
WHERE s.live
