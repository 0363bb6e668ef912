# shellcheck shell=bash
# Sourced once by the mysql image's entrypoint on an empty data directory (docker-compose.yml mounts it
# into /docker-entrypoint-initdb.d; not executable, so it is sourced, in bash, with the entrypoint's
# functions), after the entrypoint created MYSQL_DATABASE `roomstream` and MYSQL_USER `roomstream`.
# Purpose: create the API's read-only user — `mysql.reader_user` of config/production.toml, passed as
# ROOMSTREAM_MYSQL_READER_USER, password ROOMSTREAM_MYSQL_READER_PASSWORD — with SELECT on that schema
# only, as root, so that the sink's user `roomstream` needs no CREATE USER and no GRANT OPTION
# (`sink-mysql` runs with an empty ROOMSTREAM_MYSQL_READER_USER and so creates no user).
# Invariant served: the API reads the production schema and can write nothing.
# Runs on the first start only: changing ROOMSTREAM_MYSQL_READER_PASSWORD later changes nothing here;
# rotate it with `ALTER USER 'roomstream_api'@'%' IDENTIFIED BY …` as root, then restart the API.

if ! declare -F docker_process_sql >/dev/null; then
	echo "01-reader-user.sh: to be sourced by the mysql image's entrypoint (do not make it executable)" >&2
	exit 1
fi

# The user name goes into the SQL as it is: only a plain identifier (config validation asks the same).
if [[ ! "${ROOMSTREAM_MYSQL_READER_USER:-}" =~ ^[a-z_][a-z0-9_]{0,31}$ ]]; then
	mysql_error "ROOMSTREAM_MYSQL_READER_USER must be a lower-case identifier (a-z, 0-9, _), got '${ROOMSTREAM_MYSQL_READER_USER:-}'"
fi
if [ -z "${MYSQL_DATABASE:-}" ]; then
	mysql_error "MYSQL_DATABASE is empty: no schema to grant SELECT on"
fi
if [ -z "${ROOMSTREAM_MYSQL_READER_PASSWORD:-}" ]; then
	mysql_error "ROOMSTREAM_MYSQL_READER_PASSWORD is empty: the API's read-only user needs a password"
fi

# The password as the body of a SQL string literal: backslashes and quotes doubled, under an empty
# session sql_mode so that a backslash is the escape character whatever the server's default. It goes
# to the client on stdin, never on a command line.
_roomstream_reader_pw=${ROOMSTREAM_MYSQL_READER_PASSWORD//\\/\\\\}
_roomstream_reader_pw=${_roomstream_reader_pw//\'/\'\'}
# `_` and `%` are wildcards in a GRANT's database name (the entrypoint escapes them the same way).
_roomstream_reader_db=${MYSQL_DATABASE//_/\\_}

mysql_note "Creating read-only user ${ROOMSTREAM_MYSQL_READER_USER} (SELECT on ${MYSQL_DATABASE})"
docker_process_sql --database=mysql <<EOSQL
SET SESSION sql_mode = '';
CREATE USER '${ROOMSTREAM_MYSQL_READER_USER}'@'%' IDENTIFIED BY '${_roomstream_reader_pw}';
GRANT SELECT ON \`${_roomstream_reader_db}\`.* TO '${ROOMSTREAM_MYSQL_READER_USER}'@'%';
EOSQL

unset _roomstream_reader_pw _roomstream_reader_db
