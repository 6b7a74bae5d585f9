CREATE TABLE IF NOT EXISTS {db}.unverified_containers (image String, host_id String, boot_id String, container_id String) ENGINE = ReplacingMergeTree ORDER BY (image, host_id, boot_id, container_id)
