SELECT toUInt64(intDiv(f, 3600000) * 3600000) AS hour, toUInt64(count()) AS h_new
FROM (
    SELECT host_id, boot_id, container_id, min(first_seen_ms) AS f
    FROM {db}.incidence
    WHERE image = ? AND (? = 0 OR (abi = ? AND nr = ?))
    GROUP BY host_id, boot_id, container_id
)
GROUP BY hour
ORDER BY hour
