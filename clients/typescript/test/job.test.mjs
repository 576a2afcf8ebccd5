// Run by `npm test` (Node 22.18 or later, which runs the TypeScript sources as they are).
// The expected hashes and lengths are what `shared::message::EmbeddingJob::new` makes of the
// same inputs, so the client's truncation and hash are held to the consumer's.

import assert from "node:assert/strict";
import { test } from "node:test";

import { checkJob, contentHash, EmbeddingsError, embeddingJob, sendJob } from "../src/index.ts";

const base = "@cf/baai/bge-base-en-v1.5";
const small = "@cf/baai/bge-small-en-v1.5";

test("a job is the message consumer-worker reads, field for field", async () => {
  const job = await embeddingJob({
    organizationId: "org_1",
    content: "hi",
    model: small,
    jobId: "00000000-0000-0000-0000-000000000000",
  });
  assert.equal(
    JSON.stringify(job),
    '{"version":1,"jobId":"00000000-0000-0000-0000-000000000000","organizationId":"org_1",' +
      `"model":"${small}","content":"hi",` +
      '"contentHash":"6d4e2df974dc8cf369b902718a09d333f1844cc38932978bf5a2af27feb5b1c0","attempt":0}',
  );
  const bound = await embeddingJob({ organizationId: "org_1", content: "x", table: "notes", id: "n_1" });
  assert.equal(bound.model, small, "a table's job takes the table's model");
  assert.match(bound.jobId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const free = await embeddingJob({ organizationId: "org_1", content: "x" });
  assert.equal(free.model, base, "the default model");
  assert.equal("table" in free || "id" in free || "truncated" in free, false);
});

test("content is cut and hashed exactly as the consumer cuts and hashes it", async () => {
  const cases = [
    ["Police arrested three suspects", 30, false, "8a7ea0158f65e279fc36f00ab6885b6cd44aeeaa203e9b9181209d383706d0c2"],
    ["word ".repeat(1000), 2044, true, "189e15251f3bea568de2230d02939a785c9e524e89216de45869118b1d8a432e"],
    ["\u3042".repeat(2058), 2048, true, "99aa01bf569d5bce1e53caeb02ab1fa4e787cdca86b09de4778f802424b81a27"],
    // U+0085 is whitespace to Rust and not to JavaScript's `\s`; U+FEFF the other way round.
    [`${"x".repeat(2040)}\u0085${"y".repeat(100)}`, 2040, true, "dee294f153ef95fb6b1c44e14c5cebf34e59fff688076217bf01099123bf03f5"],
    [`${"x".repeat(2040)}\ufeff${"y".repeat(100)}`, 2048, true, "a78a73da4653d7752252a5b628bbf25191eea95f60683eb5b8d3dedbcb3c38fc"],
    ["\u{1F600}".repeat(2050), 2048, true, "8da688ce8d66cd74e4cb96286834c87b17d0ca34347f6ac2d38336f91c29ec93"],
    [`${"ab ".repeat(680)}   \t ${"z".repeat(100)}`, 2039, true, "e594959c542e4deb58b4976f75493b028c927f46c34f60d31d93bfcfacff8718"],
  ];
  for (const [content, chars, truncated, hash] of cases) {
    const job = await embeddingJob({ organizationId: "org_1", content, table: "claims", id: "clm_1" });
    assert.equal([...job.content].length, chars);
    assert.equal(job.truncated === true, truncated);
    assert.equal(job.contentHash, hash);
    await checkJob(job);
  }
});

test("a job the consumer would refuse is refused here", async () => {
  const refused = async (input, needle) => {
    await assert.rejects(embeddingJob(input), (error) => {
      assert.ok(error instanceof EmbeddingsError);
      assert.ok(error.isBadInput, error.code);
      assert.ok(error.message.includes(needle), error.message);
      return true;
    });
  };
  await refused({ organizationId: "org_1", content: " \n\u3000\u0085 " }, "must not be empty");
  await refused({ organizationId: "org_1", content: `${" ".repeat(2100)}x` }, "must not be empty");
  await refused({ organizationId: "org_1", content: "x", table: "claims" }, "together");
  await refused({ organizationId: "org_1", content: "x", id: "c_1" }, "together");
  await assert.rejects(embeddingJob({ organizationId: "org_1", content: "x", table: "stories", id: "s_1" }), (error) => {
    assert.ok(error instanceof EmbeddingsError && error.isNotFound, error.code);
    assert.ok(error.message.includes("not an embedding table"), error.message);
    return true;
  });
  await refused({ organizationId: "org_1", content: "x", table: "claims", id: "c", model: small }, "cannot mix models");
  await refused({ organizationId: "org_1", content: "x", model: "@cf/baai/bge-huge" }, "not supported");
  await refused({ organizationId: "", content: "x" }, "organizationId");
  await refused({ organizationId: "org_1", content: "x", jobId: "job-1" }, "UUID");
  await refused({ organizationId: "org_1", content: "a\ud800b" }, "well-formed");
});

test("sendJob checks the job, then sends it as JSON", async () => {
  const sent = [];
  const queue = { send: async (body, options) => void sent.push([body, options]) };
  const job = await embeddingJob({ organizationId: "org_1", content: "text" });
  await sendJob(queue, job);
  assert.deepEqual(sent, [[job, { contentType: "json" }]]);
  for (const bad of [
    { ...job, content: "changed after hashing" },
    { ...job, version: 2 },
    { ...job, table: "claims" },
    { ...job, recordHash: job.contentHash },
    { ...job, extra: 1 },
    { ...job, model: "@cf/unknown" },
    { ...job, attempt: -1 },
  ]) {
    await assert.rejects(sendJob(queue, bad), EmbeddingsError);
  }
  assert.equal(sent.length, 1, "nothing bad was sent");
  assert.equal(await contentHash("ab", "c") === (await contentHash("a", "bc")), false);
});
