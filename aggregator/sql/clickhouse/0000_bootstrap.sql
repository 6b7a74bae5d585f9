CREATE DATABASE IF NOT EXISTS {db};
CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, applied_at DateTime) ENGINE = ReplacingMergeTree ORDER BY version
