SELECT image, abi, nr, t_calls_high, t_calls_low, t_hosts, t_containers
FROM (
    SELECT image, abi, nr, toUInt64(sum(intDiv(c, 4294967296))) AS t_calls_high, toUInt64(sum(c % 4294967296)) AS t_calls_low
    FROM (
        SELECT image, abi, nr, host_id, boot_id, seq, max(calls) AS c
        FROM {db}.calls
        GROUP BY image, abi, nr, host_id, boot_id, seq
    )
    GROUP BY image, abi, nr
) AS t
ANY LEFT JOIN (
    SELECT image, abi, nr, toUInt64(uniqExact(host_id)) AS t_hosts, toUInt64(uniqExact(host_id, boot_id, container_id)) AS t_containers
    FROM {db}.incidence
    GROUP BY image, abi, nr
) AS u USING (image, abi, nr)
ORDER BY image, abi, nr
