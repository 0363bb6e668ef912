-- The API's 동 lookups. Half the listings carry a 동 name without a 법정동 code (Zigbang gives names
-- only), so a 동 is found by (시군구 code, 동 name), sorted by score, paged by id; the same index lists
-- the distinct (구, 동) pairs the API resolves place names against (a loose index scan).
CREATE INDEX listings_dong_name ON listings (region_code, dong, score_total, listing_id);
