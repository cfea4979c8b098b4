#!/usr/bin/env bash
# First-start hook of the InfluxDB 2.x container (/docker-entrypoint-initdb.d): makes the bucket
# that DOCKER_INFLUXDB_INIT_* created reachable through the v1-compatible API, which the InfluxQL
# backend (TIMESERIES_BACKEND=influxql) uses:
#   1. a DBRP mapping: database INFLUXDB_DATABASE (default: the bucket name), retention policy
#      INFLUXDB_RETENTION_POLICY (default: autogen) -> the bucket, marked as the default policy;
#   2. a v1 user INFLUXDB_USERNAME / INFLUXDB_PASSWORD with read and write on the bucket
#      (skipped when INFLUXDB_USERNAME is empty; the operator token works on /query as well).
# The entrypoint runs it once, on an empty data volume, with the influx CLI already configured
# (host and operator token) and DOCKER_INFLUXDB_INIT_BUCKET_ID exported.
set -euo pipefail

org="${DOCKER_INFLUXDB_INIT_ORG:?DOCKER_INFLUXDB_INIT_ORG is not set}"
bucket="${DOCKER_INFLUXDB_INIT_BUCKET:?DOCKER_INFLUXDB_INIT_BUCKET is not set}"
bucket_id="${DOCKER_INFLUXDB_INIT_BUCKET_ID:?DOCKER_INFLUXDB_INIT_BUCKET_ID is not set}"
database="${INFLUXDB_DATABASE:-$bucket}"
retention_policy="${INFLUXDB_RETENTION_POLICY:-autogen}"

echo "clpm: DBRP mapping ${database}/${retention_policy} -> bucket ${bucket} (${bucket_id})"
influx v1 dbrp create \
  --org "$org" \
  --bucket-id "$bucket_id" \
  --db "$database" \
  --rp "$retention_policy" \
  --default

if [[ -n "${INFLUXDB_USERNAME:-}" ]]; then
  echo "clpm: v1 user ${INFLUXDB_USERNAME} with read/write on bucket ${bucket}"
  influx v1 auth create \
    --org "$org" \
    --username "$INFLUXDB_USERNAME" \
    --password "${INFLUXDB_PASSWORD:?INFLUXDB_PASSWORD is required with INFLUXDB_USERNAME}" \
    --read-bucket "$bucket_id" \
    --write-bucket "$bucket_id" \
    --description "CLPM services (InfluxQL)"
fi
