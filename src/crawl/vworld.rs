//! VWORLD broker registry: the 「부동산중개업자」 CSV → `brokers.v1`, one record per person per office.
//!
//! Input: a file path or an http(s) URL; plain CSV or a zip holding one; UTF-8 (with or without BOM) or
//! EUC-KR, as VWORLD's data mart ships it. Headers are matched by name, Korean or the API's English
//! (`등록번호`/`jurirno`, `중개업자명`/`brkrNm`/`brkr_nm_encpt`, …), so column order does not matter.
//! Output key: normalized registration number + person (docs/platforms.md §5).
//!
//! On bad input: a file without the registration-number or person column fails naming the column; a row
//! missing either value goes to the DLQ with reason `missing_field` and the rest go on.

use std::io::Read;
use std::path::Path;

use time::OffsetDateTime;

use super::http::PoliteClient;
use super::{CrawlError, Emitter};
use crate::config::Config;
use crate::topics::envelope::{BROKER_SCHEMA, BrokerRecord, now};
use crate::topics::keys::normalize_registration;

/// The `stage` of this importer's DLQ events.
const STAGE: &str = "crawl.vworld";

/// Accepted header names per field, first match wins.
const REGISTRATION: &[&str] = &[
    "등록번호",
    "중개사무소등록번호",
    "jurirno",
    "registration_number",
];
const PERSON: &[&str] = &[
    "중개업자명",
    "brkrNm",
    "brkr_nm_encpt",
    "brkr_nm",
    "agent_name",
];
const OFFICE: &[&str] = &["중개사무소명", "사무소명", "bsnmCmpnm", "agency_name"];
const KIND: &[&str] = &["중개업자종별코드", "brkrAsortCode", "agent_code"];
const POSITION: &[&str] = &["직위구분코드", "ofcpsSeCode", "position_code"];
const CERTIFICATE: &[&str] = &["자격증번호", "crqfcNo", "certificate_number"];
const REGION: &[&str] = &["시군구코드", "ldCode", "법정동코드"];

/// What a registry import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VworldOutcome {
    /// Data rows read.
    pub rows: u64,
    /// Rows produced as broker records.
    pub brokers: u64,
    /// Rows sent to the DLQ.
    pub rejected: u64,
    /// The text encoding the file was in.
    pub encoding: &'static str,
}

/// Reads the registry from a path or URL and emits one broker record per row.
pub async fn import(
    cfg: &Config,
    input: &str,
    emitter: &mut Emitter<'_>,
) -> Result<VworldOutcome, CrawlError> {
    let bytes = if input.starts_with("http://") || input.starts_with("https://") {
        let client = PoliteClient::new(&cfg.crawl, std::time::Duration::ZERO, &[])?; // one download: nothing to pace
        let url = url::Url::parse(input).map_err(|e| CrawlError::Input {
            file: input.into(),
            message: e.to_string(),
        })?;
        client.get_bytes(&url).await?
    } else {
        std::fs::read(Path::new(input)).map_err(|source| CrawlError::Read {
            path: input.into(),
            source,
        })?
    };
    emit_registry(input, &bytes, now(), emitter)
}

/// Unzips if needed and decodes to text; returns the text and the encoding's name.
pub fn decode(name: &str, bytes: &[u8]) -> Result<(String, &'static str), CrawlError> {
    let raw: Vec<u8> = if bytes.starts_with(b"PK\x03\x04") {
        let mut archive =
            zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| CrawlError::Input {
                file: name.into(),
                message: format!("bad zip: {e}"),
            })?;
        let index = (0..archive.len())
            .find(|&i| {
                archive
                    .by_index(i)
                    .is_ok_and(|f| f.name().to_ascii_lowercase().ends_with(".csv"))
            })
            .ok_or_else(|| CrawlError::Input {
                file: name.into(),
                message: "the zip holds no .csv".into(),
            })?;
        let mut out = Vec::new();
        archive
            .by_index(index)
            .and_then(|mut f| f.read_to_end(&mut out).map_err(Into::into))
            .map_err(|e| CrawlError::Input {
                file: name.into(),
                message: format!("bad zip entry: {e}"),
            })?;
        out
    } else {
        bytes.to_vec()
    };
    let raw = raw
        .strip_prefix(b"\xEF\xBB\xBF")
        .map(<[u8]>::to_vec)
        .unwrap_or(raw);
    match String::from_utf8(raw) {
        Ok(text) => Ok((text, "UTF-8")),
        Err(e) => {
            let (text, _, had_errors) = encoding_rs::EUC_KR.decode(e.as_bytes());
            if had_errors {
                return Err(CrawlError::Input {
                    file: name.into(),
                    message: "neither UTF-8 nor EUC-KR text".into(),
                });
            }
            Ok((text.into_owned(), "EUC-KR"))
        }
    }
}

/// Parses registry text and emits records (and DLQ events for unusable rows).
pub fn emit_registry(
    name: &str,
    bytes: &[u8],
    observed_at: OffsetDateTime,
    emitter: &mut Emitter<'_>,
) -> Result<VworldOutcome, CrawlError> {
    let (text, encoding) = decode(name, bytes)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| CrawlError::Input {
            file: name.into(),
            message: e.to_string(),
        })?
        .clone();
    let column = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.iter().any(|n| h.trim() == *n))
    };
    let reg_col = column(REGISTRATION).ok_or_else(|| CrawlError::Input {
        file: name.into(),
        message: format!("no registration-number column (one of {REGISTRATION:?})"),
    })?;
    let person_col = column(PERSON).ok_or_else(|| CrawlError::Input {
        file: name.into(),
        message: format!("no person column (one of {PERSON:?})"),
    })?;
    let (office_col, kind_col, pos_col, cert_col, region_col) = (
        column(OFFICE),
        column(KIND),
        column(POSITION),
        column(CERTIFICATE),
        column(REGION),
    );

    let mut outcome = VworldOutcome {
        encoding,
        ..Default::default()
    };
    for (line, row) in reader.records().enumerate() {
        outcome.rows += 1;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                let error = format!("{name} data row {}: {e}", line + 1);
                emitter.reject(STAGE, "malformed_row", error, None, serde_json::Value::Null)?;
                outcome.rejected += 1;
                continue;
            }
        };
        let get = |c: Option<usize>| {
            c.and_then(|c| row.get(c))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let (Some(reg), Some(person)) = (get(Some(reg_col)), get(Some(person_col))) else {
            let value = serde_json::Value::Object(
                headers
                    .iter()
                    .zip(row.iter())
                    .map(|(h, v)| (h.to_string(), serde_json::Value::from(v)))
                    .collect(),
            );
            let error = format!(
                "{name} data row {}: registration number or person is empty",
                line + 1
            );
            emitter.reject(STAGE, "missing_field", error, None, value)?;
            outcome.rejected += 1;
            continue;
        };
        let record = BrokerRecord {
            schema: BROKER_SCHEMA.into(),
            source: "vworld".into(),
            registration_number: normalize_registration(reg),
            registration_number_raw: reg.into(),
            person_name: person.into(),
            office_name: get(office_col).map(str::to_string),
            broker_kind_code: get(kind_col).and_then(|s| s.parse().ok()),
            position_code: get(pos_col).and_then(|s| s.parse().ok()),
            certificate_number: get(cert_col).map(str::to_string),
            region_code: get(region_col)
                .and_then(|s| s.get(..5))
                .filter(|s| s.chars().all(|c| c.is_ascii_digit()))
                .map(str::to_string),
            observed_at,
        };
        emitter.broker(&record)?;
        outcome.brokers += 1;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::MemorySink;
    use crate::topics::TopicKind;

    const CSV: &str = "시군구코드,등록번호,중개사무소명,중개업자명,중개업자종별코드,직위구분코드,자격증번호\n\
        11440,92380000-4972,벽산상암스마트공인중개사사무소,홍석순,2,1,2006-12345\n\
        11110,가-92280000-공인2527,종로공인,김철수,3,2,\n\
        11110,,이름없는사무소,박영희,2,1,1\n";

    #[test]
    fn euc_kr_and_utf8_registries_give_the_same_records() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let (euc, _, _) = encoding_rs::EUC_KR.encode(CSV);
        let mut a = MemorySink::default();
        let mut b = MemorySink::default();
        let out_a = emit_registry("a.csv", CSV.as_bytes(), at, &mut Emitter::new(&mut a, None))
            .expect("utf-8");
        let out_b =
            emit_registry("b.csv", &euc, at, &mut Emitter::new(&mut b, None)).expect("euc-kr");
        assert_eq!((out_a.encoding, out_b.encoding), ("UTF-8", "EUC-KR"));
        assert_eq!(a.values(TopicKind::Brokers), b.values(TopicKind::Brokers));
        assert_eq!(
            a.keys(TopicKind::Brokers),
            vec!["92380000-4972|홍석순", "92280000-2527|김철수"]
        );
        let second = &a.values(TopicKind::Brokers)[1];
        assert_eq!(
            second["certificate_number"],
            serde_json::Value::Null,
            "empty certificate is None, not ''"
        );
        assert_eq!(out_a.rejected, 1);
        assert_eq!(a.values(TopicKind::Dlq)[0]["reason"], "missing_field");
    }

    #[test]
    fn a_file_without_the_key_columns_fails_naming_them() {
        let mut sink = MemorySink::default();
        let err = emit_registry(
            "x.csv",
            "a,b\n1,2\n".as_bytes(),
            OffsetDateTime::UNIX_EPOCH,
            &mut Emitter::new(&mut sink, None),
        )
        .expect_err("must fail");
        assert!(
            err.to_string().contains("registration-number column"),
            "{err}"
        );
    }
}
