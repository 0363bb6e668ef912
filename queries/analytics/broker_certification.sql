-- How many live listings come from a certified broker (인증: the registration number is in the VWORLD
-- registry and the named person is a licensed broker there — the seed's rule, kind 2/3 with a
-- certificate), an uncertified one (미인증: the number is not in the registry, or the person is not
-- registered or not licensed there) or one that cannot be checked (확인 불가: the listing names no
-- registration number), with shares.
-- Replaces the seed's analytics.agency_certificate_count(certificate_status, property_count), which
-- counted listings it could not match as 인증; here they are a row of their own, and the rows add up to
-- the listing count.
WITH s AS (
    SELECT CASE broker_status
               WHEN 'verified' THEN '인증'
               WHEN 'unverified' THEN '미인증'
               ELSE '확인 불가'
           END AS certificate_status,
           CASE broker_status WHEN 'verified' THEN 0 WHEN 'unverified' THEN 1 ELSE 2 END AS sort_key
    FROM listings
)
SELECT certificate_status,
       COUNT(*) AS property_count,
       ROUND(CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER (), 4) AS share
FROM s
GROUP BY certificate_status, sort_key
ORDER BY sort_key
