SELECT abi, nr, toUInt64(sum(intDiv(c, 4294967296))) AS s_calls_high, toUInt64(sum(c % 4294967296)) AS s_calls_low, toUInt8(groupBitOr(p)) AS s_phases, toUInt64(max(l)) AS s_last
FROM (
    SELECT abi, nr, host_id, boot_id, seq, max(calls) AS c, max(phases) AS p, max(last_seen_ms) AS l
    FROM {db}.calls
    WHERE image = ?
    GROUP BY abi, nr, host_id, boot_id, seq
)
GROUP BY abi, nr
ORDER BY abi, nr
