OPTIMIZE TABLE {db}.calls FINAL;
OPTIMIZE TABLE {db}.incidence FINAL;
OPTIMIZE TABLE {db}.containers FINAL;
OPTIMIZE TABLE {db}.incomplete_containers FINAL;
OPTIMIZE TABLE {db}.unverified_containers FINAL;
OPTIMIZE TABLE {db}.denials FINAL;
OPTIMIZE TABLE {db}.schema_migrations FINAL
