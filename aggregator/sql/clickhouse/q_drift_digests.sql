SELECT d, abi, nr, toUInt64(uniqExact(host_id)) AS d_hosts, toUInt64(count()) AS d_containers, toUInt64(min(f)) AS d_first, toUInt64(max(l)) AS d_last
FROM (
    SELECT host_id, boot_id, container_id, abi, nr, min(first_seen_ms) AS f, max(last_seen_ms) AS l
    FROM {db}.incidence
    WHERE image = ?
    GROUP BY host_id, boot_id, container_id, abi, nr
) AS i
ALL INNER JOIN (
    SELECT host_id, boot_id, container_id, argMax(image_digest, last_seen_ms) AS d
    FROM {db}.containers
    WHERE image = ?
    GROUP BY host_id, boot_id, container_id
) AS c USING (host_id, boot_id, container_id)
WHERE d IN (?, ?)
GROUP BY d, abi, nr
ORDER BY d, abi, nr
