-- How many live listings each 중개사무소 (broker office) has, most first; listings whose office is not
-- known are one row, so the counts add up to the listing count.
-- Replaces the seed's analytics.property_agency_count(agency_name, property_count).
SELECT COALESCE(broker_office, '(중개사무소 미상)') AS agency_name,
       COUNT(*) AS property_count
FROM listings
GROUP BY COALESCE(broker_office, '(중개사무소 미상)')
ORDER BY property_count DESC, agency_name
