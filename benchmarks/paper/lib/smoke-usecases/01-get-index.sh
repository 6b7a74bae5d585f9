# GET / returns 200 with a body.
body=$(curl -fsS --max-time 5 "http://127.0.0.1:$PORT/") || { echo "GET / failed"; exit 1; }
[ -n "$body" ] || { echo "empty body"; exit 1; }
