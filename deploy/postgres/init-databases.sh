#!/bin/sh
# First start of the compose PostgreSQL only (docker-entrypoint-initdb.d): one role and database
# for Jobline, one role for Temporal (auto-setup creates `temporal_visibility` itself, so the role
# may create databases). Passwords come from the postgres container's environment.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v jobline_password="$JOBLINE_DB_PASSWORD" \
    -v temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE jobline LOGIN PASSWORD :'jobline_password';
CREATE DATABASE jobline OWNER jobline;
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
SQL
