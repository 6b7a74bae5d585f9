SELECT image, toUInt64(uniqExact(host_id)) AS u_hosts, toUInt64(count()) AS u_containers
FROM (
    SELECT image, host_id, boot_id, container_id
    FROM (
        SELECT image, abi, nr, host_id, boot_id, container_id, min(first_seen_ms) AS f, max(last_seen_ms) AS l
        FROM {db}.incidence
        WHERE (? = '' OR image = ?) AND has(?, toUInt64(abi) * 4294967296 + nr)
        GROUP BY image, abi, nr, host_id, boot_id, container_id
    )
    WHERE f < ? AND l >= ?
    GROUP BY image, host_id, boot_id, container_id
)
GROUP BY image
ORDER BY image
