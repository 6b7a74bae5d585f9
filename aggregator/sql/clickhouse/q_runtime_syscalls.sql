SELECT runtime, image, abi, nr
FROM {db}.incidence
ALL INNER JOIN (SELECT image, host_id, boot_id, container_id, argMax(runtime, last_seen_ms) AS runtime FROM {db}.containers GROUP BY image, host_id, boot_id, container_id) AS c USING (image, host_id, boot_id, container_id)
WHERE bitAnd(phases, 2) != 0
GROUP BY runtime, image, abi, nr
ORDER BY runtime, image, abi, nr
