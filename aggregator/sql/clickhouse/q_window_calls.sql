SELECT image, abi, nr, toUInt64(sum(intDiv(c, 4294967296))) AS u_calls_high, toUInt64(sum(c % 4294967296)) AS u_calls_low, toUInt64(max(l)) AS u_last
FROM (
    SELECT image, abi, nr, host_id, boot_id, seq, max(calls) AS c, max(last_seen_ms) AS l, max(interval_end_ms) AS e
    FROM {db}.calls
    WHERE (? = '' OR image = ?)
    GROUP BY image, abi, nr, host_id, boot_id, seq
)
WHERE intDiv(e, 3600000) * 3600000 >= ? AND intDiv(e, 3600000) * 3600000 < ?
GROUP BY image, abi, nr
ORDER BY image, abi, nr
