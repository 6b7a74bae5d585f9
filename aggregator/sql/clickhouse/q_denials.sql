SELECT image, abi, nr, action, errno, profile, toUInt64(sum(intDiv(c, 4294967296))) AS d_high, toUInt64(sum(c % 4294967296)) AS d_low, toUInt64(uniqExact(host_id)) AS d_hosts, toUInt64(uniqExact(host_id, boot_id, container_id)) AS d_containers, toUInt64(min(e)) AS d_first, toUInt64(max(e)) AS d_last
FROM (
    SELECT image, abi, nr, action, errno, profile, host_id, boot_id, container_id, seq, max(count) AS c, max(interval_end_ms) AS e
    FROM {db}.denials
    WHERE (? = '' OR image = ?)
    GROUP BY image, abi, nr, action, errno, profile, host_id, boot_id, container_id, seq
)
WHERE intDiv(e, 3600000) * 3600000 >= ?
GROUP BY image, abi, nr, action, errno, profile
ORDER BY image, abi, nr, action, errno, profile
