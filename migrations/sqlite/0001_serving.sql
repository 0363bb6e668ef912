-- The production (serving) schema on SQLite — the demo's production database. The same tables, columns
-- and indexes as migrations/mysql/ (0001 + 0002), in SQLite's words: no engine or charset (SQLite
-- compares text byte-wise, as utf8mb4_bin does), indexes as CREATE INDEX, times as RFC 3339 text.
-- Keep the two in step: tests/it/api.rs (sqlite_serves_what_mariadb_serves) reads the same API answers
-- from both.

CREATE TABLE listings (
  listing_id          VARCHAR(40)  NOT NULL,
  region_code         CHAR(5)      NOT NULL,
  gu                  VARCHAR(40)  NULL,
  dong                VARCHAR(40)  NULL,
  bjd_code            CHAR(10)     NULL,
  lease               VARCHAR(10)  NOT NULL,
  deposit             INT          NOT NULL,
  rent                INT          NOT NULL,
  fee                 DOUBLE       NULL,
  rent_with_fee       DOUBLE       NOT NULL,
  monthly_cost        DOUBLE       NULL,
  area_m2             DOUBLE       NULL,
  area_pyeong         DOUBLE       NULL,
  floor_kind          VARCHAR(16)  NOT NULL,
  floor_level         SMALLINT     NULL,
  floor_band          VARCHAR(8)   NULL,
  building_floors     SMALLINT     NULL,
  layout              VARCHAR(24)  NOT NULL,
  building            VARCHAR(24)  NOT NULL,
  direction           VARCHAR(8)   NULL,
  lat                 DOUBLE       NULL,
  lng                 DOUBLE       NULL,
  facility_mask       INT          NOT NULL,
  subway_m            INT          NULL,
  convenience_store_m INT          NULL,
  cafe_m              INT          NULL,
  mart_m              INT          NULL,
  restaurant_m        INT          NULL,
  hospital_m          INT          NULL,
  facilities          TEXT         NOT NULL,
  platform_mask       TINYINT      NOT NULL,
  title               TEXT         NOT NULL,
  image_url           TEXT         NULL,
  first_seen          BIGINT       NOT NULL,
  posted_at           VARCHAR(40)  NULL,
  updated_at          VARCHAR(40)  NULL,
  broker_status       VARCHAR(12)  NOT NULL,
  broker_verified     BOOLEAN      NOT NULL,
  broker_registration VARCHAR(64)  NULL,
  broker_person       VARCHAR(64)  NULL,
  broker_office       VARCHAR(200) NULL,
  broker_reason       TEXT         NOT NULL,
  score_total         DOUBLE       NOT NULL,
  score_cost          DOUBLE       NULL,
  score_value         DOUBLE       NULL,
  score_facilities    DOUBLE       NULL,
  score_floor         DOUBLE       NULL,
  score_direction     DOUBLE       NULL,
  score_broker        DOUBLE       NULL,
  score_freshness     DOUBLE       NULL,
  bait_risk           DOUBLE       NOT NULL,
  bait_warning        BOOLEAN      NOT NULL,
  score_explanation   TEXT   NOT NULL,
  merge_explanation   TEXT   NOT NULL,
  version_clock       BIGINT       NOT NULL,
  source_partition    INT          NOT NULL,
  source_offset       BIGINT       NOT NULL,
  value_sha256        CHAR(64)     NOT NULL,
  PRIMARY KEY (listing_id)
);

-- Every source listing (platform page) merged into a canonical listing, with its link.
CREATE TABLE listing_members (
  listing_id        VARCHAR(40)  NOT NULL,
  platform          VARCHAR(16)  NOT NULL,
  source_listing_id VARCHAR(64)  NOT NULL,
  source            VARCHAR(16)  NOT NULL,
  url               TEXT         NOT NULL,
  deposit           INT          NOT NULL,
  rent              INT          NOT NULL,
  fee               DOUBLE       NULL,
  title             TEXT         NOT NULL,
  first_seen_at     VARCHAR(40)  NOT NULL,
  PRIMARY KEY (listing_id, platform, source_listing_id)
);

-- The price history of a listing's leading member, oldest first.
CREATE TABLE listing_prices (
  listing_id VARCHAR(40) NOT NULL,
  seq        INT         NOT NULL,
  from_at    VARCHAR(40) NOT NULL,
  deposit    INT         NOT NULL,
  rent       INT         NOT NULL,
  fee        DOUBLE      NULL,
  PRIMARY KEY (listing_id, seq)
);

-- The version guard's memory of deletions: a deleted listing's last version (a live listing's is in
-- `listings`), so that an older upsert delivered after the tombstone cannot bring the listing back.
CREATE TABLE listing_deletions (
  listing_id       VARCHAR(40) NOT NULL,
  version_clock    BIGINT      NOT NULL,
  source_partition INT         NOT NULL,
  source_offset    BIGINT      NOT NULL,
  PRIMARY KEY (listing_id)
);

-- Group statistics per 구 (dong_code = '') and per 법정동, recomputed from `listings` for the regions
-- a batch touched (at most every sink.stats_interval).
CREATE TABLE region_stats (
  region_code         CHAR(5)     NOT NULL,
  dong_code           VARCHAR(10) NOT NULL,
  gu                  VARCHAR(40) NULL,
  dong                VARCHAR(40) NULL,
  listings            INT         NOT NULL,
  median_deposit      DOUBLE      NULL,
  median_rent         DOUBLE      NULL,
  median_rent_with_fee DOUBLE     NULL,
  median_monthly_cost DOUBLE      NULL,
  median_area_m2      DOUBLE      NULL,
  median_cost_m2      DOUBLE      NULL,
  verified_share      DOUBLE      NULL,
  bait_share          DOUBLE      NULL,
  cross_listed        INT         NOT NULL,
  zigbang             INT         NOT NULL,
  dabang              INT         NOT NULL,
  PRIMARY KEY (region_code, dong_code)
);

-- Each sink's progress in this database: the next offset of each input partition it has made durable,
-- committed in the same transaction as the rows (the epoch the API serves).
CREATE TABLE sink_progress (
  sink         VARCHAR(16)  NOT NULL,
  topic        VARCHAR(200) NOT NULL,
  partition_id INT          NOT NULL,
  next_offset  BIGINT       NOT NULL,
  committed_at TEXT         NOT NULL,
  PRIMARY KEY (sink, topic, partition_id)
);
-- Sorts (keyset pagination: the sort key, then the id), overall and within a 구; 법정동 and (구, 동 name).
CREATE INDEX listings_score ON listings (score_total, listing_id);
CREATE INDEX listings_cost ON listings (monthly_cost, listing_id);
CREATE INDEX listings_newest ON listings (first_seen, listing_id);
CREATE INDEX listings_area ON listings (area_m2, listing_id);
CREATE INDEX listings_region_score ON listings (region_code, score_total, listing_id);
CREATE INDEX listings_region_cost ON listings (region_code, monthly_cost, listing_id);
CREATE INDEX listings_dong ON listings (bjd_code, score_total, listing_id);
CREATE INDEX members_source ON listing_members (platform, source_listing_id);
CREATE INDEX listings_dong_name ON listings (region_code, dong, score_total, listing_id);
CREATE INDEX listings_region_newest ON listings (region_code, first_seen, listing_id);
CREATE INDEX listings_region_area ON listings (region_code, area_m2, listing_id);
