// server.js -- the Node peer of bench/run.sh: fastify + pg, 2 processes
// (node:cluster), serving the two public product reads of API.md the way a
// careful Node engineer would, against the same database as OrderFlow:
//   GET /api/v1/products/:id                  one row by primary key
//   GET /api/v1/products?page=N&page_size=M   the page (LIMIT/OFFSET on the
//       primary key, planned with its values: pg's unnamed statement) and the
//       exact total from the trigger-kept product_counts, one round trip
// Same JSON as OrderFlow (money "19.99", timestamps as API.md sends them), no
// cache, no logging. Env: NODE_PEER_PORT, DATABASE_URL (libpq URL),
// NODE_PEER_WORKERS (default 2), NODE_PEER_POOL (per process, default 4:
// OrderFlow's pool_size).
'use strict';
const cluster = require('node:cluster');

const WORKERS = Number(process.env.NODE_PEER_WORKERS || 2);

if (cluster.isPrimary) {
  for (let i = 0; i < WORKERS; i++) cluster.fork();
  cluster.on('exit', (w, code) => {
    console.error(`node peer: worker ${w.process.pid} exited (${code})`);
    process.exit(1);
  });
  process.on('SIGTERM', () => {
    for (const id in cluster.workers) cluster.workers[id].kill('SIGTERM');
    process.exit(0);
  });
} else {
  const fastify = require('fastify')({ logger: false });
  const { Pool } = require('pg');
  const pool = new Pool({
    connectionString: process.env.DATABASE_URL,
    max: Number(process.env.NODE_PEER_POOL || 4),
  });
  const TS = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;
  const COLS = (p) => `${p}id, ${p}name, (${p}price_cents::numeric / 100)::numeric(20,2)::text AS price,
    ${p}in_stock, to_char(${p}created_at AT TIME ZONE 'UTC', ${TS}) AS created_at,
    to_char(${p}updated_at AT TIME ZONE 'UTC', ${TS}) AS updated_at`;
  const GET = `SELECT ${COLS('')} FROM products WHERE id = $1`;
  // The skipped rows are only stepped over: the columns are formatted for the
  // page's rows alone (outside the OFFSET subquery).
  const PAGE = `SELECT (SELECT sum(n) FROM product_counts)::bigint AS total, ${COLS('p.')} FROM
    (SELECT * FROM products ORDER BY id LIMIT $1 OFFSET $2) p ORDER BY p.id`;
  const TOTAL = 'SELECT sum(n)::bigint AS total FROM product_counts';
  const item = (r) => ({ id: Number(r.id), name: r.name, price: r.price, in_stock: r.in_stock,
    created_at: r.created_at, updated_at: r.updated_at });
  const intParam = (v, dflt, lo, hi) => {
    if (v === undefined) return dflt;
    if (!/^[0-9]{1,9}$/.test(v)) return null;
    const n = Number(v);
    return n >= lo && n <= hi ? n : null;
  };
  const problem = (reply, status, title) =>
    reply.code(status).type('application/problem+json').send({ type: 'about:blank', title, status });

  fastify.get('/api/v1/products/:id', async (req, reply) => {
    const id = intParam(req.params.id, null, 1, 2 ** 31);
    if (id === null) return problem(reply, 404, 'Not Found');
    const { rows } = await pool.query(GET, [id]);
    if (rows.length === 0) return problem(reply, 404, 'Not Found');
    return item(rows[0]);
  });

  fastify.get('/api/v1/products', async (req, reply) => {
    const page = intParam(req.query.page, 1, 1, 1e9);
    const size = intParam(req.query.page_size, 20, 1, 100);
    if (page === null || size === null) return problem(reply, 422, 'Unprocessable Entity');
    const { rows } = await pool.query(PAGE, [size, (page - 1) * size]);
    const total = rows.length ? Number(rows[0].total) : Number((await pool.query(TOTAL)).rows[0].total);
    return { items: rows.map(item), page, page_size: size, total,
      total_pages: Math.ceil(total / size) };
  });

  fastify.listen({ port: Number(process.env.NODE_PEER_PORT || 3000), host: '127.0.0.1' })
    .catch((e) => { console.error(e); process.exit(1); });
}
