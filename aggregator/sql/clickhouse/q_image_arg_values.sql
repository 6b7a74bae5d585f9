SELECT abi, nr, fields, value, toUInt64(uniqExact(host_id)) AS v_hosts, toUInt64(uniqExact(host_id, boot_id, container_id)) AS v_containers
FROM {db}.arg_values
WHERE image = ? AND (host_id, boot_id, container_id) NOT IN (SELECT host_id, boot_id, container_id FROM {db}.unverified_containers WHERE image = ?)
GROUP BY abi, nr, fields, value
ORDER BY abi, nr, fields, value
