#!/usr/bin/env bash
# First-start hook of the PostgreSQL container (/docker-entrypoint-initdb.d): creates the
# database that Keycloak keeps its realm, users and sessions in (KEYCLOAK_DATABASE, default
# keycloak), owned by POSTGRES_USER, next to the CLPM database POSTGRES_DB. The entrypoint runs
# it once, on an empty data volume.
set -euo pipefail

database="${KEYCLOAK_DATABASE:-keycloak}"
psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set database="$database" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'database', current_user)
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'database')
\gexec
SQL
