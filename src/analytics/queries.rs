//! The analytics SQL the binary carries: the views that make the tables (`queries/analytics/tables/`)
//! and the questions (`queries/analytics/*.sql`) — the seed's six Metabase tables and what the stream
//! adds. Each file starts with a `--` comment saying what it answers.

/// The `listings` view over `snapshot` (`queries/analytics/tables/listings.sql`).
pub const LISTINGS_VIEW: &str = include_str!("../../queries/analytics/tables/listings.sql");
/// The `changes` view over `change_rows` (`queries/analytics/tables/changes.sql`).
pub const CHANGES_VIEW: &str = include_str!("../../queries/analytics/tables/changes.sql");

/// One built-in question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// Its file's name without `.sql`.
    pub name: &'static str,
    /// The statement, header comment included.
    pub sql: &'static str,
}

impl Query {
    /// The header comment, as one paragraph (what it answers, what it replaces).
    pub fn about(&self) -> String {
        header(self.sql)
    }
}

/// Every `queries/analytics/*.sql`, the seed's six first.
pub const QUERIES: [Query; 9] = [
    q(
        "position_and_fee",
        include_str!("../../queries/analytics/position_and_fee.sql"),
    ),
    q(
        "all_facilities_by_district",
        include_str!("../../queries/analytics/all_facilities_by_district.sql"),
    ),
    q(
        "listings_per_agency",
        include_str!("../../queries/analytics/listings_per_agency.sql"),
    ),
    q(
        "floor_distribution",
        include_str!("../../queries/analytics/floor_distribution.sql"),
    ),
    q(
        "broker_certification",
        include_str!("../../queries/analytics/broker_certification.sql"),
    ),
    q(
        "uncertified_agents",
        include_str!("../../queries/analytics/uncertified_agents.sql"),
    ),
    q(
        "price_changes_per_week",
        include_str!("../../queries/analytics/price_changes_per_week.sql"),
    ),
    q(
        "time_to_removal_by_district",
        include_str!("../../queries/analytics/time_to_removal_by_district.sql"),
    ),
    q(
        "cross_listing_share",
        include_str!("../../queries/analytics/cross_listing_share.sql"),
    ),
];

const fn q(name: &'static str, sql: &'static str) -> Query {
    Query { name, sql }
}

/// A built-in question by name.
pub fn by_name(name: &str) -> Option<Query> {
    QUERIES.iter().copied().find(|q| q.name == name)
}

/// The leading `--` comment lines of a statement, joined into one paragraph (blank comment lines
/// dropped).
pub fn header(sql: &str) -> String {
    sql.lines()
        .map_while(|l| l.trim_start().strip_prefix("--"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_folder_is_built_in_with_a_header() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/analytics");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("queries/analytics")
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".sql").map(str::to_string)
            })
            .collect();
        on_disk.sort();
        let mut built_in: Vec<String> = QUERIES.iter().map(|q| q.name.to_string()).collect();
        built_in.sort();
        assert_eq!(
            built_in, on_disk,
            "QUERIES lists exactly queries/analytics/*.sql"
        );
        for q in QUERIES {
            let about = q.about();
            assert!(
                about.len() > 60,
                "{}: a header comment says what it answers",
                q.name
            );
            assert!(
                about.contains("Replaces the seed's") || about.contains("New with the stream"),
                "{}: says which seed table it replaces or that it is new: {about}",
                q.name
            );
        }
        assert_eq!(
            QUERIES
                .iter()
                .filter(|q| q.about().contains("Replaces"))
                .count(),
            6
        );
    }
}
