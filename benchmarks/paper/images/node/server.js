'use strict';
// sandmine paper subject: a small app on the plain `http` module.
//   GET  /            small HTML page
//   GET  /api/items   JSON list of items
//   POST /api/items   append an item: a JSON body {"name": "..."} (or any text)
//   GET  /healthz     "ok"
const http = require('http');

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT || 18103);
const maxBody = 64 * 1024;
const items = [
  { id: 1, name: 'alpha' },
  { id: 2, name: 'beta' },
  { id: 3, name: 'gamma' },
];
let nextId = items.length + 1;

function send(res, status, type, body) {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
const json = (res, status, value) => send(res, status, 'application/json', JSON.stringify(value));

function page() {
  const rows = items.slice(-20).map((i) => `<li>${i.id}: ${String(i.name).replace(/[<>&]/g, '')}</li>`).join('');
  return `<!DOCTYPE html><html><head><title>sandmine node</title></head>` +
    `<body><h1>Items</h1><p>${items.length} items</p><ul>${rows}</ul></body></html>`;
}

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (req.method === 'GET' && path === '/') return send(res, 200, 'text/html; charset=utf-8', page());
  if (req.method === 'GET' && path === '/healthz') return send(res, 200, 'text/plain', 'ok\n');
  if (path === '/api/items') {
    if (req.method === 'GET') return json(res, 200, items);
    if (req.method === 'POST') {
      const chunks = [];
      let size = 0;
      req.on('data', (c) => {
        size += c.length;
        if (size > maxBody) {
          json(res, 413, { error: 'body too large' });
          req.destroy();
        } else {
          chunks.push(c);
        }
      });
      req.on('end', () => {
        if (res.writableEnded) return;
        const text = Buffer.concat(chunks).toString('utf8');
        let name = text;
        try {
          const v = JSON.parse(text);
          if (v && typeof v === 'object' && 'name' in v) name = String(v.name);
        } catch (_) { /* plain text body */ }
        const item = { id: nextId++, name: name.slice(0, 200) };
        items.push(item);
        if (items.length > 10000) items.shift(); // bounded under load
        json(res, 201, item);
      });
      return;
    }
    return json(res, 405, { error: 'method not allowed' });
  }
  json(res, 404, { error: 'not found' });
});

server.listen(port, host, () => console.log(`listening on http://${host}:${port}`));

// As PID 1, node would ignore SIGTERM/SIGINT without handlers.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    // Keep-alive connections can hold close() open: do not wait for them long.
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
