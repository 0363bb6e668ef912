-- Which brokers not found licensed in the registry (미인증) list how many live flats: office and person,
-- most first.
-- Replaces the seed's analytics.property_not_certificate(agency_name, agent_name, property_count).
-- The counts add up to the 미인증 row of broker_certification.sql.
SELECT COALESCE(broker_office, '(중개사무소 미상)') AS agency_name,
       COALESCE(broker_person, '(중개사 미상)') AS agent_name,
       COUNT(*) AS property_count
FROM listings
WHERE broker_status = 'unverified'
GROUP BY COALESCE(broker_office, '(중개사무소 미상)'), COALESCE(broker_person, '(중개사 미상)')
ORDER BY property_count DESC, agency_name, agent_name
