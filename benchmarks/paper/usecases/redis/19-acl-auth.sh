#!/usr/bin/env bash
# Use case: authentication and ACLs: AUTH with a wrong password fails, ACL SETUSER creates a restricted user that can GET but not SET, ACL WHOAMI/LIST/DELUSER.
# Source: Redis docs: ACL (Access Control List) and AUTH command
. "$(dirname "$0")/../lib.sh"
u=uc19$(date +%s%N | tail -c 6)
out=$(rcli AUTH "$u" wrongpass 2>&1); echo "$out" | grep -q WRONGPASS || fail "bad AUTH not refused: $out"
expect_redis OK ACL SETUSER "$u" on '>s3cret' '~uc:19:*' +get +acl
rcli SET uc:19:k v >/dev/null
out=$(printf 'AUTH %s s3cret\nACL WHOAMI\nGET uc:19:k\nSET uc:19:k w\nGET other\n' "$u" | timeout 20 redis-cli -h "$HOST" -p "$PORT" 2>&1)
echo "$out" | grep -qx "$u" || fail "ACL WHOAMI did not show $u: $(echo $out)"
echo "$out" | grep -qx v || fail "restricted user could not GET: $(echo $out)"
[ "$(echo "$out" | grep -c NOPERM)" -ge 2 ] || fail "restricted user was not denied SET / other key: $(echo $out)"
rcli ACL LIST | grep -q "user $u" || fail "ACL LIST lacks $u"
expect_redis 1 ACL DELUSER "$u"
rcli DEL uc:19:k >/dev/null
