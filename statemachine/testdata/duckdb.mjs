// Runs SQL in an in-memory DuckDB (@duckdb/node-api, from the pinned test
// tools in $ABX_NODE_MODULES) for the Athena test: reads
// {"setup": [sql...], "queries": [sql...]} on stdin, runs every setup
// statement, then each query, and writes
// {"results": [{"columns": [{"name", "type"}], "rows": [[...]]}]} on stdout.
// A statement that fails ends the run with its error and the statement.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(process.env.ABX_NODE_MODULES + '/');
const { DuckDBInstance } = require('@duckdb/node-api');

const input = JSON.parse(readFileSync(0, 'utf8'));
const db = await DuckDBInstance.create(':memory:');
const conn = await db.connect();

async function run(sql) {
  try {
    return await conn.runAndReadAll(sql);
  } catch (e) {
    process.stderr.write(`duckdb: ${e.message}\nin:\n${sql}\n`);
    process.exit(1);
  }
}

for (const sql of input.setup) {
  await run(sql);
}
const results = [];
for (const sql of input.queries) {
  const r = await run(sql);
  results.push({
    columns: r.columnNames().map((name, i) => ({ name, type: r.columnTypes()[i].toString() })),
    rows: r.getRowsJson(),
  });
}
process.stdout.write(JSON.stringify({ results }));
