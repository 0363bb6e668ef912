-- Indexes for the API's searches (src/api/filter.rs, src/api/page.rs): each ends in the id, which
-- keyset pagination orders by after the sort key.
-- A 동 is found by (시군구 code, 동 name): half the listings (Zigbang's) carry the name without a
-- 법정동 code. The same index lists the distinct (구, 동) pairs the API resolves place names against.
CREATE INDEX listings_dong_name ON listings (region_code, dong, score_total, listing_id);
-- Newest and largest first within a 구 (score and cost have theirs in 0001): without them a 구's rows
-- are read and sorted on every page (3 ms at 1,000 rows a 구, growing with the 구).
CREATE INDEX listings_region_newest ON listings (region_code, first_seen, listing_id);
CREATE INDEX listings_region_area ON listings (region_code, area_m2, listing_id);
