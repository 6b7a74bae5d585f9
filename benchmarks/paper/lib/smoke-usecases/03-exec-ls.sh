# docker exec of a tool never run while mining (ls): an admin-style use
# case outside the mining workload; if the profile lacks a syscall it needs,
# this case fails and exercises the denied-syscall report.
docker exec "$CONTAINER" /bin/busybox ls /www >/dev/null || { echo "docker exec ls failed"; exit 1; }
