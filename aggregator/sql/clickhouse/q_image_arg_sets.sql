SELECT abi, nr, toUInt64(uniqExact(host_id, boot_id, container_id)) AS s_containers, toUInt64(uniqExactIf(host_id, o > 0)) AS s_overflow_hosts, toUInt64(uniqExactIf(host_id, boot_id, container_id, o > 0)) AS s_overflow_containers
FROM (
    SELECT abi, nr, host_id, boot_id, container_id, max(overflow) AS o
    FROM {db}.arg_sets
    WHERE image = ? AND (host_id, boot_id, container_id) NOT IN (SELECT host_id, boot_id, container_id FROM {db}.unverified_containers WHERE image = ?)
    GROUP BY abi, nr, host_id, boot_id, container_id
)
GROUP BY abi, nr
ORDER BY abi, nr
