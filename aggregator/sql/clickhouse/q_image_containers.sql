SELECT host_id, boot_id, container_id, toUInt64(min(started_at_ms)) AS c_started, toUInt64(max(last_seen_ms)) AS c_last, argMax(seccomp, last_seen_ms) AS c_seccomp, argMax(image_digest, last_seen_ms) AS c_digest, toUInt8((host_id, boot_id, container_id) IN (SELECT host_id, boot_id, container_id FROM {db}.incomplete_containers WHERE image = ?)) AS c_incomplete, toUInt8((host_id, boot_id, container_id) IN (SELECT host_id, boot_id, container_id FROM {db}.unverified_containers WHERE image = ?)) AS c_unverified
FROM {db}.containers
WHERE image = ?
GROUP BY host_id, boot_id, container_id
ORDER BY c_started, host_id, boot_id, container_id
