-- Athena table over the Spate lake: Parquet (zstd) files under
-- s3://BUCKET/PREFIX/logs/dt=YYYY-MM-DD/hour=HH/service=NAME/.
-- Replace BUCKET/PREFIX (both places) and run in the Athena query editor or with
-- `aws athena start-query-execution`. `spate run` with [lake.s3.glue] registers
-- each partition (BatchCreatePartition) before it uploads the first file into
-- it, so no crawler is needed and no query has to name a service, e.g.
--   SELECT service, count(*) FROM logs
--   WHERE dt = '2026-11-23' AND severity = 'ERROR' GROUP BY service;
-- A lake written otherwise (spate ingest, then uploaded): MSCK REPAIR TABLE logs.
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
  `attrs` string,
  `position` string
)
COMMENT 'Spate log lake: one row per event'
PARTITIONED BY (`dt` string, `hour` string, `service` string)
STORED AS PARQUET
LOCATION 's3://BUCKET/PREFIX/logs/'
TBLPROPERTIES (
  'classification' = 'parquet',
  'parquet.compression' = 'ZSTD'
);
