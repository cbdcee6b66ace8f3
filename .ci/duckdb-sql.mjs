// .ci/duckdb-sql.mjs: runs SQL statements in DuckDB (@duckdb/node-api) for
// .ci/bench's peers of deid retain (the rewrite of a file without expired
// rows and erased subjects, and of a published output without erased
// pseudonyms), with the bench's settings, and prints the rows each statement
// changed and the seconds it took.
//
//   node .ci/duckdb-sql.mjs [--threads 2] [--preserve-order false] [--key-hex HEX] SQL...
//
// --key-hex defines bench_pseudo(m), HMAC-SHA256 under the key truncated to
// 32 hex characters as the bench's DuckDB peer defines it, so a statement
// can compute the pseudonyms of erased subjects.
import { createHash } from 'node:crypto';
import { DuckDBInstance } from '@duckdb/node-api';

const args = process.argv.slice(2);
const opt = { threads: '2', preserveOrder: 'false', keyHex: '' };
const sql = [];
for (let i = 0; i < args.length; i++) {
  switch (args[i]) {
    case '--threads': opt.threads = args[++i]; break;
    case '--preserve-order': opt.preserveOrder = args[++i]; break;
    case '--key-hex': opt.keyHex = args[++i]; break;
    default: sql.push(args[i]);
  }
}
if (sql.length === 0) {
  console.error('usage: node .ci/duckdb-sql.mjs [--threads N] [--preserve-order true|false] [--key-hex HEX] SQL...');
  process.exit(2);
}

// pads returns HMAC's inner and outer keys (RFC 2104) in hex.
function pads(keyHex) {
  let key = Buffer.from(keyHex, 'hex');
  if (key.length > 64) key = createHash('sha256').update(key).digest();
  const ipad = Buffer.alloc(64, 0x36), opad = Buffer.alloc(64, 0x5c);
  for (let i = 0; i < key.length; i++) { ipad[i] ^= key[i]; opad[i] ^= key[i]; }
  return [ipad.toString('hex'), opad.toString('hex')];
}

const db = await DuckDBInstance.create(':memory:', { threads: opt.threads, preserve_insertion_order: opt.preserveOrder });
const conn = await db.connect();
if (opt.keyHex) {
  const [ipad, opad] = pads(opt.keyHex);
  await conn.run(`CREATE OR REPLACE TEMP MACRO bench_pseudo(m) AS
  left(sha256(unhex('${opad}') || unhex(sha256(unhex('${ipad}') || encode(m)))), 32)`);
}
const version = (await conn.runAndReadAll('SELECT version()')).getRows()[0][0];
for (const s of sql) {
  const t0 = process.hrtime.bigint();
  const res = await conn.run(s);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ rows_changed: Number(res.rowsChanged), seconds: Math.round(secs * 1000) / 1000, duckdb: version }));
}
