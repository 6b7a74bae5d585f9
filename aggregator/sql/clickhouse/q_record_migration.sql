INSERT INTO {db}.schema_migrations (version, applied_at) VALUES (?, now())
