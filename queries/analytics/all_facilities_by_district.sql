-- How many flats of each 구 have every facility nearby: subway, convenience store, cafe, mart, restaurant
-- and hospital, each within the radius the seed searched Kakao with (1,058 / 629 / 987 / 1,712 / 500 /
-- 946 m), so that the counts mean what they meant.
-- Replaces the seed's analytics.property_having_all_facility_count(district, property_count) (all six
-- counts > 0). The seed enriched every flat with Kakao; roomstream keeps what the platforms publish
-- (Zigbang's nearby places: subway and convenience store, sometimes cafe and mart, never restaurant or
-- hospital), so property_count stays 0 until a source gives all six. known_count is what can be said
-- today: flats with at least one facility known and every known one within its radius. Unlike the
-- seed, every 구 with listings is listed, with its listing count.
SELECT gu AS district,
       SUM(CASE WHEN subway_m <= 1058 AND convenience_store_m <= 629 AND cafe_m <= 987
                 AND mart_m <= 1712 AND restaurant_m <= 500 AND hospital_m <= 946
                THEN 1 ELSE 0 END) AS property_count,
       SUM(CASE WHEN facility_mask > 0
                 AND (subway_m IS NULL OR subway_m <= 1058)
                 AND (convenience_store_m IS NULL OR convenience_store_m <= 629)
                 AND (cafe_m IS NULL OR cafe_m <= 987)
                 AND (mart_m IS NULL OR mart_m <= 1712)
                 AND (restaurant_m IS NULL OR restaurant_m <= 500)
                 AND (hospital_m IS NULL OR hospital_m <= 946)
                THEN 1 ELSE 0 END) AS known_count,
       COUNT(*) AS listings
FROM listings
WHERE gu IS NOT NULL
GROUP BY gu
ORDER BY property_count DESC, known_count DESC, district
