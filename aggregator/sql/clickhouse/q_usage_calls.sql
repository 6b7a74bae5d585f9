SELECT toUInt64(intDiv(e, 3600000) * 3600000) AS hour, toUInt64(sum(intDiv(c, 4294967296))) AS h_calls_high, toUInt64(sum(c % 4294967296)) AS h_calls_low, toUInt64(uniqExact(host_id)) AS h_hosts
FROM (
    SELECT abi, nr, host_id, boot_id, seq, max(calls) AS c, max(interval_end_ms) AS e
    FROM {db}.calls
    WHERE image = ? AND (? = 0 OR (abi = ? AND nr = ?))
    GROUP BY abi, nr, host_id, boot_id, seq
)
GROUP BY hour
ORDER BY hour
