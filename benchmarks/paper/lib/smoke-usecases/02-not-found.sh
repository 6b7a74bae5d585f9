# A missing file is a 404, and the server keeps running.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/no-such-file")
[ "$code" = 404 ] || { echo "expected 404, got $code"; exit 1; }
