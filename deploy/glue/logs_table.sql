-- Athena table over the Spate lake: Parquet (zstd) files under
-- s3://BUCKET/PREFIX/logs/dt=YYYY-MM-DD/hour=HH/service=NAME/.
-- Replace BUCKET/PREFIX (both places) and run in the Athena query editor or with
-- `aws athena start-query-execution`. Partition projection means no crawler and
-- no MSCK REPAIR: partitions are computed from the query's filters.
-- `service` is injected: every query must say which service(s), e.g.
--   SELECT severity, count(*) FROM logs
--   WHERE service = 'checkout' AND dt = '2026-11-23' GROUP BY severity;
-- (service names outside [A-Za-z0-9._-] are %XX-escaped in paths; query those
-- with the escaped form). Columns match the Parquet files exactly
-- (spate_operators::sinks::lake::schema::logs_file_schema), checked by a test.
CREATE EXTERNAL TABLE IF NOT EXISTS logs (
  `event_id` string,
  `ts` timestamp,
  `ingest_ts` timestamp,
  `host` string,
  `source` string,
  `log_group` string,
  `log_stream` string,
  `severity` string,
  `tags` array<string>,
  `status` int,
  `client_ip` string,
  `message` string,
  `attrs` string
)
COMMENT 'Spate log lake: one row per event'
PARTITIONED BY (`dt` string, `hour` string, `service` string)
STORED AS PARQUET
LOCATION 's3://BUCKET/PREFIX/logs/'
TBLPROPERTIES (
  'classification' = 'parquet',
  'parquet.compression' = 'ZSTD',
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2024-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'projection.hour.type' = 'integer',
  'projection.hour.range' = '0,23',
  'projection.hour.digits' = '2',
  'projection.service.type' = 'injected',
  'storage.location.template' = 's3://BUCKET/PREFIX/logs/dt=${dt}/hour=${hour}/service=${service}'
);
