-- A listing's score: seven components (0–100; NULL = unknown, never zero), their weighted total, and the
-- bait risk (허위매물 의심) with the evidence behind it.
--
-- DataFusion runs this one statement over `score_input` (one row per canonical listing; the columns are
-- described in src/process/score/features.rs) on two schedules: for each micro-batch of listings whose
-- inputs changed, and over the whole state (`roomstream rescore --full`, and every restore). Planned once
-- per process; only the rows change. It must return one row per input row, in order (no WHERE, no ORDER
-- BY). To change the formula: stop the processors, point `[score] queries` at a folder with the edited
-- copy, run `roomstream rescore --full` (exactly the listings whose score moved are republished), then
-- start the processors with the same setting.
WITH c AS (
  SELECT
    listing_id,
    -- Monthly cost (deposit × yearly rate / 12 + rent + 관리비): 50 at 60만원 (about Seoul's median one-room
    -- monthly cost), 100 at half of it, 0 at twice it. Whether it is cheap *for what it is* is `value`.
    GREATEST(0.0, LEAST(100.0, 50.0 - 50.0 * log2(monthly_cost / 60.0))) AS cost,
    -- Value for money: the fair-rent model's monthly cost minus the asking one; 30 % below fair = 100,
    -- 30 % above = 0. Unknown until the model of the listing's partition is fitted.
    CASE WHEN fair_cost IS NULL THEN NULL
         ELSE 50.0 + 50.0 * GREATEST(-1.0, LEAST(1.0, (fair_cost - monthly_cost) / fair_cost / 0.3)) END AS value,
    -- Facilities: the distances the payload really carries (nearest subway station, convenience store).
    CASE WHEN subway_m IS NULL THEN NULL WHEN subway_m <= 300 THEN 100.0 WHEN subway_m <= 600 THEN 75.0
         WHEN subway_m <= 1000 THEN 50.0 ELSE 20.0 END AS subway,
    CASE WHEN store_m IS NULL THEN NULL WHEN store_m <= 100 THEN 100.0 WHEN store_m <= 300 THEN 70.0
         WHEN store_m <= 500 THEN 40.0 ELSE 10.0 END AS store,
    -- Floor: 반지하 and 옥탑 penalised, the ground floor a little; a band (저/중/고) as the platforms show it.
    CASE floor_kind WHEN 'semi_basement' THEN 10.0 WHEN 'rooftop' THEN 30.0
         WHEN 'level' THEN CASE WHEN floor_level <= 1 THEN 50.0 ELSE 90.0 END
         WHEN 'low' THEN 60.0 WHEN 'mid' THEN 90.0 WHEN 'high' THEN 90.0 ELSE NULL END AS floor,
    -- Direction: south-facing favoured.
    CASE direction WHEN 'S' THEN 100.0 WHEN 'SE' THEN 85.0 WHEN 'SW' THEN 85.0 WHEN 'E' THEN 60.0
         WHEN 'W' THEN 50.0 WHEN 'NE' THEN 35.0 WHEN 'NW' THEN 35.0 WHEN 'N' THEN 20.0 ELSE NULL END AS direction,
    -- Broker: licensed and the named person registered (안심 중개사); unknown when no broker is named.
    CASE broker_status WHEN 'verified' THEN 100.0 WHEN 'unverified' THEN 20.0 ELSE NULL END AS broker,
    -- Freshness: days since posted or last changed, in the bands of features.rs (≤3, ≤7, ≤14, ≤30, ≤60, more).
    CASE age_band WHEN 0 THEN 100.0 WHEN 1 THEN 80.0 WHEN 2 THEN 60.0 WHEN 3 THEN 35.0 WHEN 4 THEN 15.0
         ELSE 5.0 END AS freshness,
    -- Bait evidence. The asking cost against the fair one (NULL before the model is fitted).
    monthly_cost / fair_cost AS price_ratio,
    photo_reuse,
    broker_status,
    age_band
  FROM score_input
), f AS (
  SELECT *,
    CASE WHEN subway IS NULL AND store IS NULL THEN NULL
         ELSE (COALESCE(subway, 0.0) + COALESCE(store, 0.0))
              / (CAST(subway IS NOT NULL AS DOUBLE) + CAST(store IS NOT NULL AS DOUBLE)) END AS facilities,
    COALESCE(price_ratio < 0.7, false) AS ev_price,
    photo_reuse >= 1 AS ev_photos,
    broker_status = 'unverified' AS ev_broker,
    age_band >= 4 AS ev_stale
  FROM c
)
SELECT
  listing_id,
  round(cost, 1) AS cost,
  round(value, 1) AS value,
  round(facilities, 1) AS facilities,
  floor,
  direction,
  broker,
  freshness,
  -- The total: weights cost 3, value 3, facilities 2, the rest 1, over the components that are known.
  round((3.0 * cost + 3.0 * COALESCE(value, 0.0) + 2.0 * COALESCE(facilities, 0.0) + COALESCE(floor, 0.0)
          + COALESCE(direction, 0.0) + COALESCE(broker, 0.0) + freshness)
        / (3.0 + 3.0 * CAST(value IS NOT NULL AS DOUBLE) + 2.0 * CAST(facilities IS NOT NULL AS DOUBLE)
          + CAST(floor IS NOT NULL AS DOUBLE) + CAST(direction IS NOT NULL AS DOUBLE)
          + CAST(broker IS NOT NULL AS DOUBLE) + 1.0), 1) AS total,
  -- Bait risk: price far below fair (up to 40), the same photo under other listing ids, alive or gone
  -- (20 each, up to 40), a broker not verified (10), listed unchanged for 30+ days (10). A warning from 50 on: a
  -- low price needs a second kind of evidence.
  round(LEAST(100.0,
      COALESCE(40.0 * GREATEST(0.0, LEAST(1.0, (0.8 - price_ratio) / 0.3)), 0.0)
    + 20.0 * CAST(LEAST(photo_reuse, 2) AS DOUBLE)
    + 10.0 * CAST(ev_broker AS DOUBLE)
    + 10.0 * CAST(ev_stale AS DOUBLE)), 1) AS bait_risk,
  round(price_ratio, 3) AS price_ratio,
  ev_price,
  ev_photos,
  ev_broker,
  ev_stale
FROM f
