SELECT image, abi, nr, toUInt64(uniqExact(host_id)) AS u_hosts, toUInt64(count()) AS u_containers
FROM (
    SELECT image, abi, nr, host_id, boot_id, container_id, min(first_seen_ms) AS f, max(last_seen_ms) AS l
    FROM {db}.incidence
    WHERE (? = '' OR image = ?)
    GROUP BY image, abi, nr, host_id, boot_id, container_id
)
WHERE f < ? AND l >= ?
GROUP BY image, abi, nr
ORDER BY image, abi, nr
