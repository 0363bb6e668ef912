//! [`Config::validate`]: values of the right type that cannot work, refused naming their key.

use std::net::SocketAddr;

use super::{Config, ConfigError, mask_url};

impl Config {
    /// Checks values that have the right type but cannot work. Pure: no I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, value: &str, reason: &str| ConfigError::Invalid {
            key,
            value: mask_url(value),
            reason: reason.to_string(),
        };
        let k = &self.kafka;
        if k.brokers.split(',').any(|b| {
            let b = b.trim();
            b.rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        }) {
            return Err(invalid(
                "kafka.brokers",
                &k.brokers,
                "expected host:port[,host:port…]",
            ));
        }
        if k.namespace.is_empty()
            || !k
                .namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(invalid(
                "kafka.namespace",
                &k.namespace,
                "use letters, digits, '.', '_' or '-'",
            ));
        }
        if k.replication_factor < 1 {
            return Err(invalid(
                "kafka.replication_factor",
                &k.replication_factor.to_string(),
                "must be ≥ 1",
            ));
        }
        if !(1024..=2_097_151).contains(&k.consumer_buffer_kib) {
            return Err(invalid(
                "kafka.consumer_buffer_kib",
                &k.consumer_buffer_kib.to_string(),
                "must be 1024 (1 MiB, one message) to 2097151 KiB",
            ));
        }
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&k.compression.as_str()) {
            return Err(invalid(
                "kafka.compression",
                &k.compression,
                "expected none, gzip, snappy, lz4 or zstd",
            ));
        }
        if !["mysql://", "mariadb://", "sqlite:"]
            .iter()
            .any(|s| self.mysql.url.starts_with(s))
        {
            return Err(invalid(
                "mysql.url",
                &self.mysql.url,
                "expected mysql://…, mariadb://… or sqlite:…",
            ));
        }
        if !["postgres://", "postgresql://"]
            .iter()
            .any(|s| self.postgres.url.starts_with(s))
        {
            return Err(invalid(
                "postgres.url",
                &self.postgres.url,
                "expected postgres://…",
            ));
        }
        match url::Url::parse(&self.store.url) {
            Ok(u) if u.scheme() == "s3" && u.host_str().is_some_and(|h| h.len() >= 3) => {}
            Ok(u) if u.scheme() == "file" && u.path().starts_with('/') => {}
            _ => {
                return Err(invalid(
                    "store.url",
                    &self.store.url,
                    "expected s3://bucket/prefix or file:///absolute/path",
                ));
            }
        }
        if !self.store.endpoint.is_empty() && url::Url::parse(&self.store.endpoint).is_err() {
            return Err(invalid(
                "store.endpoint",
                &self.store.endpoint,
                "expected an http(s) URL or empty",
            ));
        }
        self.api.validate()?;
        if self.crawl.max_attempts == 0 {
            return Err(invalid("crawl.max_attempts", "0", "must be ≥ 1"));
        }
        if !(1..=4096).contains(&self.crawl.max_response_mib) {
            return Err(invalid(
                "crawl.max_response_mib",
                &self.crawl.max_response_mib.to_string(),
                "between 1 and 4096",
            ));
        }
        for (key, base) in [
            ("zigbang.base_url", &self.zigbang.base_url),
            ("dabang.base_url", &self.dabang.base_url),
        ] {
            if !url::Url::parse(base).is_ok_and(|u| u.scheme().starts_with("http")) {
                return Err(invalid(key, base, "expected an http(s) URL"));
            }
        }
        if !(1..=15).contains(&self.zigbang.batch_size) {
            return Err(invalid(
                "zigbang.batch_size",
                &self.zigbang.batch_size.to_string(),
                "the API takes 1 to 15 ids",
            ));
        }
        if self.zigbang.kinds.is_empty() {
            return Err(invalid(
                "zigbang.kinds",
                "[]",
                "name at least one kind, e.g. onerooms",
            ));
        }
        if self.dabang.result_cap == 0 || self.dabang.max_pages == 0 {
            return Err(invalid(
                "dabang.result_cap",
                &self.dabang.result_cap.to_string(),
                "result_cap and max_pages must be ≥ 1",
            ));
        }
        let pr = &self.process;
        if pr.removal_sweeps == 0 {
            return Err(invalid(
                "process.removal_sweeps",
                "0",
                "must be ≥ 1: one missed sweep is not a removal",
            ));
        }
        if pr.history_len == 0 {
            return Err(invalid("process.history_len", "0", "must be ≥ 1"));
        }
        if !(0.0..=1.0).contains(&pr.merge_threshold) || pr.merge_threshold.is_nan() {
            return Err(invalid(
                "process.merge_threshold",
                &pr.merge_threshold.to_string(),
                "must be between 0 and 1",
            ));
        }
        if pr.checkpoint_events == 0 || pr.checkpoint_interval.is_zero() {
            return Err(invalid(
                "process.checkpoint_events",
                &pr.checkpoint_events.to_string(),
                "checkpoint_events and checkpoint_interval must be > 0",
            ));
        }
        if !pr.metrics_listen.is_empty() && pr.metrics_listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "process.metrics_listen",
                &pr.metrics_listen,
                "expected host:port, e.g. 127.0.0.1:9464",
            ));
        }
        if !self.sink.ops_listen.is_empty() && self.sink.ops_listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "sink.ops_listen",
                &self.sink.ops_listen,
                "expected host:port, e.g. 127.0.0.1:9465",
            ));
        }
        let r = &self.retry;
        if r.first.is_zero() || r.max < r.first {
            return Err(invalid(
                "retry.max",
                &format!("first {:?}, max {:?}", r.first, r.max),
                "retry.first must be > 0 and retry.max ≥ retry.first",
            ));
        }
        if r.give_up_after < r.first {
            return Err(invalid(
                "retry.give_up_after",
                &format!("{:?}", r.give_up_after),
                "must be ≥ retry.first",
            ));
        }
        let sc = &self.score;
        if !(0.0..=1.0).contains(&sc.deposit_rate) || sc.deposit_rate.is_nan() {
            return Err(invalid(
                "score.deposit_rate",
                &sc.deposit_rate.to_string(),
                "a yearly rate between 0 and 1, e.g. 0.05",
            ));
        }
        if !(0.0..=0.5).contains(&sc.epsilon) || sc.epsilon.is_nan() {
            return Err(invalid(
                "score.epsilon",
                &sc.epsilon.to_string(),
                "between 0 (exact) and 0.5",
            ));
        }
        if sc.batch_rows == 0 {
            return Err(invalid("score.batch_rows", "0", "must be ≥ 1"));
        }
        let sk = &self.sink;
        if sk.batch_rows == 0 || sk.batch_rows > 100_000 {
            return Err(invalid(
                "sink.batch_rows",
                &sk.batch_rows.to_string(),
                "between 1 and 100000",
            ));
        }
        if sk.snapshot_interval.is_zero() {
            return Err(invalid("sink.snapshot_interval", "0s", "must be > 0"));
        }
        let ident = |v: &str| {
            !v.is_empty()
                && v.len() <= 63
                && v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !v.starts_with(|c: char| c.is_ascii_digit())
        };
        if !ident(&sk.redshift_schema) {
            return Err(invalid(
                "sink.redshift_schema",
                &sk.redshift_schema,
                "a lower-case SQL identifier (a-z, 0-9, _)",
            ));
        }
        for (key, db) in [
            ("mysql.reader_user", &self.mysql),
            ("postgres.reader_user", &self.postgres),
        ] {
            if !db.reader_user.is_empty() && !ident(&db.reader_user) {
                return Err(invalid(
                    key,
                    &db.reader_user,
                    "a lower-case SQL identifier (a-z, 0-9, _)",
                ));
            }
            if !db.reader_user.is_empty() && db.reader_password.is_empty() {
                return Err(invalid(
                    key,
                    &db.reader_user,
                    "needs a password: set ROOMSTREAM_MYSQL_READER_PASSWORD / ROOMSTREAM_POSTGRES_READER_PASSWORD",
                ));
            }
        }
        if !sc.queries.is_empty()
            && !std::path::Path::new(&sc.queries)
                .join("score.sql")
                .is_file()
        {
            return Err(invalid(
                "score.queries",
                &sc.queries,
                "no score.sql in this folder",
            ));
        }
        Ok(())
    }
}
