//! `crawl vworld`: the broker registry from a file or a URL (zipped EUC-KR, as VWORLD ships it).

use std::io::Write;

use roomstream::crawl::{Emitter, vworld};
use roomstream::kafka::KafkaSink;
use roomstream::topics::TopicKind;

use crate::support::sites::{FaultKind, Sites};
use crate::support::{TestEnv, assert_all_valid, spawn_env};

/// A registry written the way VWORLD's data mart writes it: Korean headers, one row per person.
/// Made up here (no VWORLD fixture is needed): 200 people in 80 offices, three formats of number.
pub(crate) fn registry(rows: usize) -> String {
    let mut csv = String::from(
        "시군구코드,등록번호,중개사무소명,중개업자명,중개업자종별코드,직위구분코드,자격증번호\n",
    );
    for i in 0..rows {
        let office = i % 80;
        let number = match office % 3 {
            0 => format!("11{:03}-2024-{:05}", 110 + office, office),
            1 => format!("가-9228{office:04}-공인{office}"),
            _ => format!("9238{office:04}-{:04}", office * 7),
        };
        let certificate = if i % 5 == 0 {
            String::new()
        } else {
            format!("2010-{i:05}")
        };
        csv.push_str(&format!(
            "11110,{number},행복공인중개사사무소{office},중개인{i},{},{},{certificate}\n",
            1 + i % 3,
            1 + i % 2
        ));
    }
    csv.push_str("11110,,번호없는사무소,무번호,2,1,\n"); // no registration number → DLQ
    csv
}

pub(crate) fn zipped_euc_kr(text: &str) -> Vec<u8> {
    let (euc, _, errors) = encoding_rs::EUC_KR.encode(text);
    assert!(!errors);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(
        "부동산중개업자.csv",
        zip::write::SimpleFileOptions::default(),
    )
    .expect("zip entry");
    zip.write_all(&euc).expect("zip write");
    zip.finish().expect("zip").into_inner()
}

async fn import(
    env: &TestEnv,
    input: &str,
) -> Result<vworld::VworldOutcome, roomstream::crawl::CrawlError> {
    let mut sink = KafkaSink::new(&env.cfg.kafka).expect("producer");
    let mut emitter = Emitter::new(&mut sink, None);
    let outcome = vworld::import(&env.cfg, input, &mut emitter).await?;
    emitter.finish().expect("every record acknowledged");
    Ok(outcome)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zipped_euc_kr_download_is_retried_after_429_and_lands_keyed_by_number_and_person() {
    let sites = Sites::start().await;
    sites.file("registry.zip", zipped_euc_kr(&registry(200)));
    sites.fault("/files/registry.zip", FaultKind::TooMany, 1);
    sites.fault("/files/registry.zip", FaultKind::ServerError, 1);
    let env = spawn_env(&[("crawl", "backoff", "10ms")]).await;

    let outcome = import(&env, &format!("{}files/registry.zip", sites.base_url()))
        .await
        .expect("import");
    assert_eq!(
        (
            outcome.rows,
            outcome.brokers,
            outcome.rejected,
            outcome.encoding
        ),
        (201, 200, 1, "EUC-KR")
    );
    assert_eq!(
        sites.log().iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        vec![429, 500, 200]
    );

    let brokers = env.read_topic(TopicKind::Brokers);
    assert_eq!(assert_all_valid(TopicKind::Brokers, &brokers), 200);
    for r in &brokers {
        let v = r.json();
        assert_eq!(
            r.key,
            format!(
                "{}|{}",
                v["registration_number"].as_str().expect("number"),
                v["person_name"].as_str().expect("person")
            )
        );
        assert!(
            !r.key.contains("가-") && !r.key.contains("공인"),
            "old-format numbers are normalized: {}",
            r.key
        );
    }
    let dlq = env.read_topic(TopicKind::Dlq);
    assert_eq!(assert_all_valid(TopicKind::Dlq, &dlq), 1);
    assert_eq!(dlq[0].json()["reason"], "missing_field");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_download_is_an_error_naming_the_problem_and_produces_nothing() {
    let sites = Sites::start().await;
    sites.file(
        "broken.zip",
        b"PK\x03\x04 this is not really a zip".to_vec(),
    );
    sites.file(
        "page.html",
        "<html><body>점검 중입니다</body></html>"
            .as_bytes()
            .to_vec(),
    );
    let env = spawn_env(&[("crawl", "backoff", "10ms"), ("crawl", "max_attempts", "2")]).await;

    let err = import(&env, &format!("{}files/broken.zip", sites.base_url()))
        .await
        .expect_err("bad zip");
    assert!(err.to_string().contains("bad zip"), "{err}");
    let err = import(&env, &format!("{}files/page.html", sites.base_url()))
        .await
        .expect_err("not a CSV");
    assert!(
        err.to_string().contains("registration-number column"),
        "{err}"
    );
    let err = import(&env, &format!("{}files/missing.csv", sites.base_url()))
        .await
        .expect_err("404");
    assert!(err.to_string().contains("HTTP 404"), "{err}");
    assert!(env.read_topic(TopicKind::Brokers).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_imports_a_utf8_file() {
    let env = spawn_env(&[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("registry.csv");
    std::fs::write(&path, format!("\u{feff}{}", registry(30))).expect("write");
    let out = env.roomstream(&["crawl", "vworld", "--file", &path.to_string_lossy()]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("31 rows (UTF-8), 30 brokers, 1 rejected to the DLQ")
    );
    assert_eq!(env.read_topic(TopicKind::Brokers).len(), 30);
}

#[tokio::test]
async fn a_response_over_the_size_cap_is_refused_as_it_arrives_and_not_retried() {
    use roomstream::crawl::http::{FetchError, PoliteClient};
    let sites = Sites::start().await;
    sites.file("big", vec![b'x'; 3 << 20]);
    sites.file("small", vec![b'x'; 900 << 10]);
    let env = spawn_env(&[
        ("crawl", "max_response_mib", "1"),
        ("crawl", "max_attempts", "3"),
    ])
    .await;
    let client = PoliteClient::new(&env.cfg.crawl, std::time::Duration::ZERO, &[]).expect("client");
    let url = |path: &str| url::Url::parse(&format!("{}{path}", sites.base_url())).expect("url");
    for path in ["files/small", "stream/small"] {
        let body = client.get_bytes(&url(path)).await.expect("under the cap");
        assert_eq!(body.len(), 900 << 10, "{path}");
    }
    // Announced by Content-Length, and streamed without one: both refused, neither retried.
    for path in ["files/big", "stream/big"] {
        let before = client.requests();
        match client.get_bytes(&url(path)).await {
            Err(FetchError::TooLarge { limit, .. }) => assert_eq!(limit, 1 << 20, "{path}"),
            other => panic!("{path}: {:?}", other.map(|b| b.len())),
        }
        assert_eq!(client.requests() - before, 1, "{path} is not retried");
    }
}
