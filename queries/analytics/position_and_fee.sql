-- Where each listing is and what it costs a month, by 구 (a map in Metabase).
-- Replaces the seed's analytics.property_position_and_fee(room_id, district, latitude, longitude,
-- deposit, rent_fee = rent + maintenance_fee). Money in 만원; an unknown 관리비 counts 0 in rent_fee, as
-- the seed's did. One row per live listing with a 구 (the seed dropped listings outside the 25 구).
SELECT listing_id AS room_id,
       gu AS district,
       lat AS latitude,
       lng AS longitude,
       deposit,
       rent,
       fee AS maintenance_fee,
       rent_with_fee AS rent_fee
FROM listings
WHERE gu IS NOT NULL
ORDER BY district, room_id
