// Proves that the project's D1 migrations hold what better-auth expects, for this app's options
// (src/auth-options.ts: email and password, the organization plugin). Two checks, on SQLite
// databases made with Node's built-in node:sqlite (which better-auth takes as a database as it
// is, the same way it takes a D1 binding):
//   1. better-auth's own migration planner (`getMigrations`, what `npx @better-auth/cli migrate`
//      runs), against a database built from wrangler/migrations/*.sql, must plan nothing;
//   2. each of better-auth's tables there must have every column (same type, nullability and
//      key), foreign key and index that better-auth's migration makes on an empty database.
// Anything found is listed, and the exit status is 1. Node 22.18 or later: it imports the app's
// options from TypeScript as they are.
//   node example-app/scripts/schema-check.mjs [MIGRATIONS_DIR]   (wrangler/migrations by default)
import { readdirSync, readFileSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { getMigrations } from "better-auth/db/migration";
import { schemaOptions } from "../src/auth-options.ts";

const migrationsDir = process.argv[2]
  ? `${process.argv[2].replace(/\/$/, "")}/`
  : fileURLToPath(new URL("../../wrangler/migrations/", import.meta.url));
// Only for the planner's option check; nothing is signed.
const secret = "schema-check-secret-that-signs-nothing-at-all";

const ours = new DatabaseSync(":memory:");
const files = readdirSync(migrationsDir).filter((name) => name.endsWith(".sql")).sort();
for (const name of files) ours.exec(readFileSync(migrationsDir + name, "utf8"));

const problems = [];

// 1. What better-auth's migrate would still do to our database.
const plan = await getMigrations({ ...schemaOptions, database: ours, secret }, { throwOnUnsafe: false });
for (const { table, fields } of plan.toBeCreated) {
  problems.push(`better-auth would create table ${table} (${Object.keys(fields).join(", ")})`);
}
for (const { table, fields } of plan.toBeAdded) {
  for (const column of Object.keys(fields)) problems.push(`better-auth would add column ${table}.${column}`);
}
for (const { table, name } of plan.toBeAddedIndexes) {
  problems.push(`better-auth would create index ${name} on ${table}`);
}
problems.push(...plan.unsafeChanges, ...plan.schemaProblems);
const wouldRun = plan.toBeCreated.length + plan.toBeAdded.length + plan.toBeAddedIndexes.length > 0;

// 2. Our tables against the ones better-auth makes from nothing.
const fresh = new DatabaseSync(":memory:");
const freshPlan = await getMigrations({ ...schemaOptions, database: fresh, secret });
await freshPlan.runMigrations();
const tables = freshPlan.toBeCreated.map(({ table }) => table);
for (const table of tables) {
  const want = describe(fresh, table);
  const have = describe(ours, table);
  if (have.columns.size === 0) continue; // already reported by the planner
  for (const [kind, wanted] of Object.entries(want)) {
    for (const [key, shape] of wanted) {
      const got = have[kind].get(key);
      if (got === undefined) problems.push(`${table}: missing ${shape}`);
      else if (got !== shape) problems.push(`${table}: ${got}, better-auth makes ${shape}`);
    }
  }
}

// A table's columns, foreign keys and indexes, each keyed by its column(s) and shown as
// better-auth would describe it; types compare without case (SQLite ignores it).
function describe(db, table) {
  const columns = new Map();
  for (const c of db.prepare(`PRAGMA table_info("${table}")`).all()) {
    const shape = [c.type.toLowerCase(), c.notnull ? "not null" : "null", c.pk ? "primary key" : ""];
    columns.set(c.name, `column ${c.name} ${shape.join(" ").trim()}`);
  }
  const foreignKeys = new Map();
  for (const k of db.prepare(`PRAGMA foreign_key_list("${table}")`).all()) {
    const shape = `${k.from} references ${k.table}(${k.to}) on delete ${k.on_delete.toLowerCase()}`;
    foreignKeys.set(k.from, `foreign key ${shape}`);
  }
  const indexes = new Map();
  for (const i of db.prepare(`PRAGMA index_list("${table}")`).all()) {
    if (i.origin === "pk" || i.partial) continue;
    const cols = db.prepare(`PRAGMA index_info("${i.name}")`).all().map((c) => c.name);
    const key = `${i.unique ? "unique " : ""}(${cols.join(", ")})`;
    indexes.set(key, `index ${key}`);
  }
  return { columns, foreignKeys, indexes };
}

if (problems.length > 0) {
  console.error("wrangler/migrations do not hold what better-auth expects:");
  for (const problem of problems) console.error(`  - ${problem}`);
  if (wouldRun) console.error(`\nbetter-auth's migrate would run:\n${await plan.compileMigrations()}`);
  process.exit(1);
}
console.log(
  `schema-check: after ${files.length} migrations better-auth plans nothing, and its ${tables.length} tables ` +
    `(${tables.join(", ")}) match the ones it makes`,
);
