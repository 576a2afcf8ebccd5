// Drives the Vectorize stand-in with Cloudflare's own `cloudflare` npm SDK (pinned in
// wrangler/package.json), as an application's scripts would drive Vectorize, and prints what it
// saw as one JSON line for the end-to-end suite to check:
//
//   node e2e/vectorize-sdk.mjs http://127.0.0.1:PORT
//
// It makes a throwaway index, a metadata index, writes NDJSON, waits for the mutation to be
// processed, queries with a filter, reads and deletes by id, and removes the index.
const [base] = process.argv.slice(2);
if (!base) {
  console.error("usage: node e2e/vectorize-sdk.mjs STAND_IN_URL");
  process.exit(2);
}
const module = new URL("../wrangler/node_modules/cloudflare/index.mjs", import.meta.url);
const { default: Cloudflare } = await import(module.href);
const client = new Cloudflare({ apiToken: "local", baseURL: `${base}/client/v4` });
const account_id = "local";
const name = `sdk-${process.pid}`;

await client.vectorize.indexes.create({ account_id, name, config: { dimensions: 3, metric: "cosine" } });
await client.vectorize.indexes.metadataIndex.create(name, {
  account_id,
  propertyName: "kind",
  indexType: "string",
});
const vectors = [
  { id: "a", values: [1, 0, 0], namespace: "org", metadata: { kind: "x" } },
  { id: "b", values: [0.9, 0.1, 0], namespace: "org", metadata: { kind: "y" } },
  { id: "c", values: [0, 1, 0], namespace: "other", metadata: { kind: "x" } },
];
const { mutationId } = await client.vectorize.indexes.upsert(name, {
  account_id,
  body: vectors.map((v) => JSON.stringify(v)).join("\n"),
});
let info;
for (let i = 0; i < 100; i++) {
  info = await client.vectorize.indexes.info(name, { account_id });
  if (info.processedUpToMutation === mutationId) break;
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const filtered = await client.vectorize.indexes.query(name, {
  account_id,
  vector: [1, 0, 0],
  topK: 5,
  namespace: "org",
  filter: { kind: "x" },
  returnMetadata: "all",
});
const got = await client.vectorize.indexes.getByIDs(name, { account_id, ids: ["b"] });
await client.vectorize.indexes.deleteByIDs(name, { account_id, ids: ["a"] });
let refused;
try {
  await client.vectorize.indexes.query(name, { account_id, vector: [1, 0], topK: 5 });
} catch (error) {
  refused = error.status;
}
const listed = [];
for await (const index of client.vectorize.indexes.list({ account_id })) listed.push(index.name);
await client.vectorize.indexes.delete(name, { account_id });
console.log(
  JSON.stringify({
    processed: info.processedUpToMutation === mutationId,
    vectorCount: info.vectorCount,
    matches: filtered.matches.map((m) => [m.id, m.metadata?.kind]),
    got: got.map((v) => [v.id, v.values.length, v.namespace]),
    wrongDimension: refused,
    listed: listed.includes(name),
  }),
);
