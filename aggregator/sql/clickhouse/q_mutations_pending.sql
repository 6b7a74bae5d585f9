SELECT toUInt64(count()) AS m_pending, toUInt64(sum(parts_to_do)) AS m_parts FROM system.mutations WHERE database = ? AND table = ? AND is_done = 0
