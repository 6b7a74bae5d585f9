SELECT host_id, boot_id, container_id, abi, nr, toUInt8(groupBitOr(phases)) AS i_phases, toUInt64(min(first_seen_ms)) AS i_first, toUInt64(max(last_seen_ms)) AS i_last
FROM {db}.incidence
WHERE image = ?
GROUP BY host_id, boot_id, container_id, abi, nr
ORDER BY host_id, boot_id, container_id, abi, nr
