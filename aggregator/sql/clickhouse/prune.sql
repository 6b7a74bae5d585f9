ALTER TABLE {db}.calls DELETE WHERE intDiv(interval_end_ms, 3600000) * 3600000 + 3600000 <= ?;
ALTER TABLE {db}.incidence DELETE WHERE (image, abi, nr, host_id, boot_id, container_id, phases) IN (SELECT image, abi, nr, host_id, boot_id, container_id, phases FROM {db}.incidence GROUP BY image, abi, nr, host_id, boot_id, container_id, phases HAVING max(last_seen_ms) < ?);
ALTER TABLE {db}.denials DELETE WHERE intDiv(interval_end_ms, 3600000) * 3600000 + 3600000 <= ?;
ALTER TABLE {db}.incomplete_containers DELETE WHERE (image, host_id, boot_id, container_id) IN (SELECT image, host_id, boot_id, container_id FROM {db}.containers GROUP BY image, host_id, boot_id, container_id HAVING max(last_seen_ms) < ?);
ALTER TABLE {db}.unverified_containers DELETE WHERE (image, host_id, boot_id, container_id) IN (SELECT image, host_id, boot_id, container_id FROM {db}.containers GROUP BY image, host_id, boot_id, container_id HAVING max(last_seen_ms) < ?);
ALTER TABLE {db}.containers DELETE WHERE (image, host_id, boot_id, container_id) IN (SELECT image, host_id, boot_id, container_id FROM {db}.containers GROUP BY image, host_id, boot_id, container_id HAVING max(last_seen_ms) < ?)
