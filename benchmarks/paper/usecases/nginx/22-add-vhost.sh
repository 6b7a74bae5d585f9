#!/usr/bin/env bash
# Use case: add a name-based virtual host (server_name uc22.test with a return directive) and reload; Host: uc22.test gets it, other hosts still get the default site; then remove it and reload.
# Source: nginx docs: How nginx processes a request (name-based virtual servers); ngx_http_rewrite_module — return
. "$(dirname "$0")/../lib.sh"
conf=/etc/nginx/conf.d/uc22-vhost.conf
dexec_i sh -c "cat > $conf" <<CONF || fail "cannot write the vhost"
server {
    listen 127.0.0.1:$PORT;
    server_name uc22.test;
    location / { return 200 "uc22 vhost\n"; }
    location /gone { return 410; }
}
CONF
dexec nginx -t >/dev/null 2>&1 || { dexec rm -f $conf; fail "vhost config rejected"; }
dexec nginx -s reload || fail "reload failed"
ok=""
for _ in $(seq 1 40); do http_get -H 'Host: uc22.test' "$BASE/" | grep -q 'uc22 vhost' && ok=1 && break; sleep 0.25; done
s410=$(http_status -H 'Host: uc22.test' "$BASE/gone")
dexec rm -f $conf; dexec nginx -s reload
[ -n "$ok" ] || fail "vhost not served after reload"
[ "$s410" = 410 ] || fail "vhost /gone gave $s410"
sleep 0.5
http_get "$BASE/" | grep -q 'It works' || fail "default site not served"
