-- Run once by the mysql image on an empty data directory (docker-compose.yml mounts it into
-- /docker-entrypoint-initdb.d), after it created MYSQL_DATABASE `roomstream` and MYSQL_USER `roomstream`.
-- Purpose: the MySQL sink (as `roomstream`) creates the API's read-only user, `mysql.reader_user` of
-- config/production.toml, and grants it SELECT on the schema (src/sink/mysql/mod.rs, grant_reader). That
-- needs CREATE USER and the right to pass SELECT on, which the image's user lacks.
-- Invariant served: the API reads the production schema and can write nothing.
GRANT CREATE USER ON *.* TO 'roomstream'@'%';
GRANT SELECT ON `roomstream`.* TO 'roomstream'@'%' WITH GRANT OPTION;
