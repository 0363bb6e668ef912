//! The production database — MySQL 8 (MariaDB here) in production, SQLite for the demo — as one type.
//!
//! The MySQL sink writes the serving schema and the API reads it; both build their SQL with [`Sql`]
//! (text with `?` placeholders and the values bound to them, the same for both engines) and run it on
//! a [`Pool`] or a [`Tx`], which send it to whichever engine `mysql.url` names. Where the two
//! engines' SQL differs — JSON aggregation, distance on the sphere, upserts, the current time — the
//! caller asks the [`Backend`] for the fragment. Rows decode into any type that reads from both
//! engines' rows ([`FromRows`]: tuples and `#[derive(sqlx::FromRow)]` structs do).
//!
//! Schemas: `migrations/mysql/` and `migrations/sqlite/` define the same tables and indexes.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlArguments, MySqlRow};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Arguments, AssertSqlSafe, FromRow, MySql, MySqlPool, Sqlite};

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// MySQL 8 or MariaDB.
    Mysql,
    /// SQLite 3 (bundled, with its math functions).
    Sqlite,
}

impl Backend {
    /// The engine a URL names: `sqlite:` → SQLite, `mysql://` / `mariadb://` → MySQL.
    pub fn of(url: &str) -> Result<Backend, String> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Ok(Backend::Mysql)
        } else {
            Err(format!(
                "`{}` is neither mysql://, mariadb:// nor sqlite:",
                crate::config::mask_url(url)
            ))
        }
    }

    /// A JSON array of one object per row of a subquery, as text: `fields` are (key, expression,
    /// whether it is a double).
    pub fn json_array_of_objects(self, fields: &[(&str, &str, bool)]) -> String {
        let args: Vec<String> = fields
            .iter()
            .map(|(key, e, double)| match (self, double) {
                // SQLite writes a double into JSON with 15 significant digits; 17 keep every bit.
                (Backend::Sqlite, true) => format!(
                    "'{key}', CASE WHEN {e} IS NULL THEN NULL ELSE json(printf('%!.17g', {e})) END"
                ),
                _ => format!("'{key}', {e}"),
            })
            .collect();
        let args = args.join(", ");
        match self {
            // MySQL 8 returns the JSON type, which sqlx reads only as text after a cast.
            Backend::Mysql => format!("CAST(JSON_ARRAYAGG(JSON_OBJECT({args})) AS CHAR)"),
            Backend::Sqlite => format!("json_group_array(json_object({args}))"),
        }
    }

    /// Distance in metres on the sphere (MySQL's radius, 6,370,986 m) between the columns `lat`,
    /// `lng` and a point whose latitude and longitude are bound next, in that order.
    pub fn push_distance(self, q: &mut Sql, lat: f64, lng: f64) {
        match self {
            Backend::Mysql => {
                q.push("ST_Distance_Sphere(POINT(lng, lat), POINT(")
                    .push_bind(lng)
                    .push(", ")
                    .push_bind(lat)
                    .push("))");
            }
            Backend::Sqlite => {
                // Haversine, as ST_Distance_Sphere computes it.
                q.push("(2 * 6370986.0 * asin(sqrt(pow(sin(radians(lat - ")
                    .push_bind(lat)
                    .push(") / 2), 2) + cos(radians(lat)) * cos(radians(")
                    .push_bind(lat)
                    .push(")) * pow(sin(radians(lng - ")
                    .push_bind(lng)
                    .push(") / 2), 2))))");
            }
        }
    }

    /// The type a `CAST(… AS …)` to a 64-bit integer names.
    pub fn integer_type(self) -> &'static str {
        match self {
            Backend::Mysql => "SIGNED",
            Backend::Sqlite => "INTEGER",
        }
    }

    /// The current UTC time, as the engine stores it in a `committed_at` column.
    pub fn now(self) -> &'static str {
        match self {
            Backend::Mysql => "UTC_TIMESTAMP(6)",
            Backend::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        }
    }

    /// `committed_at` as RFC 3339 text.
    pub fn committed_at_text(self) -> &'static str {
        match self {
            Backend::Mysql => "DATE_FORMAT(committed_at, '%Y-%m-%dT%H:%i:%s.%fZ')",
            Backend::Sqlite => "committed_at",
        }
    }

    /// `INSERT` that skips rows whose key exists.
    pub fn insert_ignore(self) -> &'static str {
        match self {
            Backend::Mysql => "INSERT IGNORE INTO",
            Backend::Sqlite => "INSERT OR IGNORE INTO",
        }
    }

    /// The tail of an upsert keyed by `key` that overwrites `columns` with the inserted values.
    pub fn upsert_tail(self, key: &str, columns: &[&str]) -> String {
        match self {
            Backend::Mysql => format!(
                " ON DUPLICATE KEY UPDATE {}",
                columns
                    .iter()
                    .map(|c| format!("{c} = VALUES({c})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Backend::Sqlite => format!(
                " ON CONFLICT ({key}) DO UPDATE SET {}",
                columns
                    .iter()
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// ` FOR UPDATE` where the engine locks rows (SQLite locks the whole database for the
    /// transaction instead: [`Pool::begin`] starts it `IMMEDIATE`).
    pub fn for_update(self) -> &'static str {
        match self {
            Backend::Mysql => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }
}

/// A value bound to a `?`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean (MySQL TINYINT(1), SQLite 0/1).
    Bool(bool),
    /// Any integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// Text.
    Text(String),
}

macro_rules! value_from {
    ($($t:ty => $v:ident $(as $c:ty)?),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(x: $t) -> Value {
                Value::$v((x $(as $c)?).into())
            }
        }
    )*};
}
value_from!(bool => Bool, i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int,
    u8 => Int as i64, u16 => Int as i64, u32 => Int as i64, f64 => Float, String => Text);

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Text(s.clone())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

impl<T: Clone + Into<Value>> From<&Option<T>> for Value {
    fn from(v: &Option<T>) -> Value {
        v.clone().map_or(Value::Null, Into::into)
    }
}

/// SQL text with `?` placeholders and the values bound to them, in order. Built like sqlx's
/// `QueryBuilder`: text is pushed as is (only ever the program's own), values only through
/// [`Sql::push_bind`].
#[derive(Debug, Clone, Default)]
pub struct Sql {
    text: String,
    args: Vec<Value>,
}

impl Sql {
    /// Starts with `text`.
    pub fn new(text: impl Display) -> Sql {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    /// Appends text.
    pub fn push(&mut self, text: impl Display) -> &mut Sql {
        use std::fmt::Write;
        let _ = write!(self.text, "{text}");
        self
    }

    /// Appends a `?` bound to `value`.
    pub fn push_bind(&mut self, value: impl Into<Value>) -> &mut Sql {
        self.text.push('?');
        self.args.push(value.into());
        self
    }

    /// Appends `(?, ?, …)`, one placeholder per value.
    pub fn push_list<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Sql {
        self.text.push('(');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.push_bind(v);
        }
        self.text.push(')');
        self
    }

    /// Appends `VALUES (…), (…)`: `row` pushes one row's values into the [`Row`] it is given.
    pub fn push_values<T>(
        &mut self,
        rows: impl IntoIterator<Item = T>,
        mut row: impl FnMut(&mut Row<'_>, T),
    ) -> &mut Sql {
        self.text.push_str("VALUES ");
        for (i, r) in rows.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.text.push('(');
            let mut b = Row {
                sql: self,
                first: true,
            };
            row(&mut b, r);
            self.text.push(')');
        }
        self
    }

    /// The text.
    pub fn sql(&self) -> &str {
        &self.text
    }

    /// The bound values.
    pub fn args(&self) -> &[Value] {
        &self.args
    }

    fn mysql(&self) -> Result<MySqlArguments, sqlx::Error> {
        arguments(&self.args)
    }

    fn sqlite(&self) -> Result<SqliteArguments, sqlx::Error> {
        arguments(&self.args)
    }
}

/// The values as one engine's arguments.
fn arguments<A>(values: &[Value]) -> Result<A, sqlx::Error>
where
    A: Arguments,
    for<'q> Option<i64>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    for<'q> bool: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    for<'q> i64: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    for<'q> f64: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    for<'q> String: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
{
    let mut a = A::default();
    for v in values {
        match v {
            Value::Null => a.add(None::<i64>),
            Value::Bool(b) => a.add(*b),
            Value::Int(i) => a.add(*i),
            Value::Float(f) => a.add(*f),
            Value::Text(s) => a.add(s.clone()),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(a)
}

/// One row of [`Sql::push_values`].
pub struct Row<'a> {
    sql: &'a mut Sql,
    first: bool,
}

impl Row<'_> {
    /// The next value of the row.
    pub fn push_bind(&mut self, value: impl Into<Value>) -> &mut Self {
        if !std::mem::take(&mut self.first) {
            self.sql.text.push_str(", ");
        }
        self.sql.push_bind(value);
        self
    }
}

/// A row type both engines' rows decode into.
pub trait FromRows:
    for<'r> FromRow<'r, MySqlRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}
impl<T> FromRows for T where
    T: for<'r> FromRow<'r, MySqlRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

/// A pool of connections to the production database.
#[derive(Debug, Clone)]
pub enum Pool {
    /// MySQL or MariaDB.
    Mysql(MySqlPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

/// A transaction on the production database.
pub enum Tx {
    /// MySQL or MariaDB.
    Mysql(sqlx::Transaction<'static, MySql>),
    /// SQLite.
    Sqlite(sqlx::Transaction<'static, Sqlite>),
}

/// Runs `$body` with `$e` bound to the MySQL or SQLite executor and `$args` to the arguments.
macro_rules! on {
    ($self:expr, $q:expr, |$e:ident, $args:ident| $body:expr) => {
        match $self {
            Self::Mysql($e) => {
                let $args = $q.mysql()?;
                $body
            }
            Self::Sqlite($e) => {
                let $args = $q.sqlite()?;
                $body
            }
        }
    };
}

/// `execute`, `fetch_all` and `fetch_optional` for a [`Pool`] (`&self`, the pool is the executor) or
/// a [`Tx`] (`&mut self`, its connection `&mut **tx` is).
macro_rules! executor_methods {
    (($($recv:tt)*), ($($deref:tt)*)) => {
        /// Runs a statement; returns the rows it affected.
        pub async fn execute($($recv)* self, q: &Sql) -> Result<u64, sqlx::Error> {
            Ok(on!(self, q, |e, a| sqlx::query_with(AssertSqlSafe(q.sql().to_string()), a)
                .execute($($deref)* e).await?.rows_affected()))
        }

        /// Every row, decoded.
        pub async fn fetch_all<T: FromRows>($($recv)* self, q: &Sql) -> Result<Vec<T>, sqlx::Error> {
            on!(self, q, |e, a| sqlx::query_as_with(AssertSqlSafe(q.sql().to_string()), a)
                .fetch_all($($deref)* e).await)
        }

        /// The first row, if any, decoded.
        pub async fn fetch_optional<T: FromRows>($($recv)* self, q: &Sql) -> Result<Option<T>, sqlx::Error> {
            on!(self, q, |e, a| sqlx::query_as_with(AssertSqlSafe(q.sql().to_string()), a)
                .fetch_optional($($deref)* e).await)
        }
    };
}

impl Pool {
    /// Which engine.
    pub fn backend(&self) -> Backend {
        match self {
            Pool::Mysql(_) => Backend::Mysql,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Begins a transaction (SQLite: `BEGIN IMMEDIATE`, so that two writers queue at the start
    /// rather than fail when the second upgrades its read).
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Pool::Mysql(p) => Tx::Mysql(p.begin().await?),
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    executor_methods!((&), ());

    /// A small pool on `url` (MySQL, or the SQLite file, read-only or not) for a one-off reader
    /// such as `roomstream status`.
    pub async fn connect(url: &str, read_only: bool, max: u32) -> Result<Pool, sqlx::Error> {
        Ok(
            match Backend::of(url).map_err(|e| sqlx::Error::Configuration(e.into()))? {
                Backend::Mysql => Pool::Mysql(
                    sqlx::mysql::MySqlPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(Duration::from_secs(5))
                        .connect(url)
                        .await?,
                ),
                Backend::Sqlite => Pool::Sqlite(sqlite_pool(url, read_only, max).await?),
            },
        )
    }

    /// Connections open now, and idle among them (for `/metrics`).
    pub fn connections(&self) -> (u32, usize) {
        match self {
            Pool::Mysql(p) => (p.size(), p.num_idle()),
            Pool::Sqlite(p) => (p.size(), p.num_idle()),
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Pool::Mysql(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }
}

impl Tx {
    executor_methods!((&mut), (&mut **));

    /// Commits.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Mysql(t) => t.commit().await,
            Tx::Sqlite(t) => t.commit().await,
        }
    }
}

/// SQLite options for the production database file: created if missing (writers), write-ahead log so
/// that readers never wait for the writer, a busy timeout for the moments they do.
pub fn sqlite_options(url: &str, read_only: bool) -> Result<SqliteConnectOptions, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(!read_only)
        .read_only(read_only)
        .busy_timeout(Duration::from_secs(10));
    // The writer switches the file to WAL (it stays so); a reader cannot, and need not.
    Ok(if read_only {
        options
    } else {
        options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
    })
}

/// A SQLite pool (its folder created if missing, for a writer).
pub async fn sqlite_pool(
    url: &str,
    read_only: bool,
    max_connections: u32,
) -> Result<SqlitePool, sqlx::Error> {
    let options = sqlite_options(url, read_only)?;
    if !read_only && let Some(dir) = options.get_filename().parent() {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
    }
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bound_in_order_and_text_is_kept() {
        let mut q = Sql::new("SELECT 1 FROM t WHERE a IN ");
        q.push_list(["x", "y"]).push(" AND b = ").push_bind(3_i32);
        q.push(" AND c = ").push_bind(None::<f64>);
        assert_eq!(
            q.sql(),
            "SELECT 1 FROM t WHERE a IN (?, ?) AND b = ? AND c = ?"
        );
        assert_eq!(
            q.args(),
            &[
                Value::Text("x".into()),
                Value::Text("y".into()),
                Value::Int(3),
                Value::Null
            ]
        );
        let mut v = Sql::new("INSERT INTO t (a, b) ");
        v.push_values([(1, "p"), (2, "q")], |r, (a, b)| {
            r.push_bind(a).push_bind(b);
        });
        assert_eq!(v.sql(), "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
        assert_eq!(v.args().len(), 4);
    }

    #[test]
    fn upserts_and_urls_per_engine() {
        assert_eq!(
            Backend::Mysql.upsert_tail("id", &["a", "b"]),
            " ON DUPLICATE KEY UPDATE a = VALUES(a), b = VALUES(b)"
        );
        assert_eq!(
            Backend::Sqlite.upsert_tail("id", &["a"]),
            " ON CONFLICT (id) DO UPDATE SET a = excluded.a"
        );
        assert_eq!(Backend::of("sqlite://x.db"), Ok(Backend::Sqlite));
        assert_eq!(Backend::of("mariadb://h/db"), Ok(Backend::Mysql));
        assert!(Backend::of("postgres://h/db").is_err());
    }

    #[tokio::test]
    async fn sqlite_distance_matches_the_haversine() {
        // Seoul City Hall → Gangnam station: 8.9 km by the haversine with MySQL's radius.
        let pool = sqlite_pool("sqlite::memory:", false, 1)
            .await
            .expect("sqlite");
        let p = Pool::Sqlite(pool);
        let mut q = Sql::new("SELECT ");
        Backend::Sqlite.push_distance(&mut q, 37.5666, 126.9784);
        q.push(" FROM (SELECT 37.4979 AS lat, 127.0276 AS lng)");
        let (d,): (f64,) = p.fetch_optional(&q).await.expect("query").expect("row");
        let (la1, lo1, la2, lo2) = (
            37.4979_f64.to_radians(),
            127.0276_f64.to_radians(),
            37.5666_f64.to_radians(),
            126.9784_f64.to_radians(),
        );
        let h = ((la2 - la1) / 2.0).sin().powi(2)
            + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
        let want = 2.0 * 6_370_986.0 * h.sqrt().asin();
        assert!((d - want).abs() < 0.01, "{d} vs {want}");
        assert!((8_000.0..10_000.0).contains(&d));
    }
}

/// Whether a database error may pass on its own — the connection (refused, reset, timed out, the
/// server shutting down or gone away), a deadlock or a serialization failure — rather than a
/// statement or schema that will fail again.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => {
            d.code().is_some_and(|c| {
                // SQLSTATE class 08 (connection), 40001/40P01 (serialization, deadlock), 57P0x
                // (PostgreSQL shutting down), 70100 (MariaDB: query interrupted), HY000 with MySQL's
                // lock wait timeout (1205) and shutdown (1053) numbers aside.
                c.starts_with("08")
                    || ["40001", "40P01", "57P01", "57P02", "57P03", "70100"].contains(&c.as_ref())
            }) || d.message().contains("shutdown in progress")
                || d.message().contains("Lock wait timeout")
        }
        _ => false,
    }
}
