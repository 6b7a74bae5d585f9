SELECT DISTINCT kind, path
FROM {db}.executed_files
WHERE image = ? AND (host_id, boot_id, container_id) NOT IN (SELECT host_id, boot_id, container_id FROM {db}.unverified_containers WHERE image = ?)
ORDER BY kind, path
