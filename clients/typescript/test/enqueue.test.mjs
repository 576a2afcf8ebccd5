// Run by `npm test`. The cases and their outcomes are rendered from `shared::enqueue::resolve`,
// the rule the gateway and search-worker apply, by `cargo run -p client-types` (and checked
// current by `cargo run -p client-types -- --check`): the client's check of a job's content,
// model, table and id is held to the workers' step for step and message for message.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { EmbeddingsError, embeddingJob } from "../src/index.ts";

const golden = JSON.parse(readFileSync(new URL("./enqueue.golden.json", import.meta.url), "utf8"));

test("every golden case of the enqueue rule has the workers' outcome", async () => {
  assert.ok(golden.cases.length > 20, "the golden file holds its cases");
  for (const { input, ok, error } of golden.cases) {
    const label = JSON.stringify(input);
    const made = embeddingJob({ organizationId: "org_1", ...input });
    if (ok !== undefined) {
      const job = await made;
      assert.deepEqual({ model: job.model, table: job.table, id: job.id }, { table: undefined, id: undefined, ...ok }, label);
    } else {
      await assert.rejects(made, (thrown) => {
        assert.ok(thrown instanceof EmbeddingsError, label);
        assert.deepEqual({ code: thrown.code, message: thrown.message }, error, label);
        return true;
      });
    }
  }
});

test("text over the workers' limit is refused, not cut", async () => {
  const at = await embeddingJob({ organizationId: "org_1", content: "\u{1F600}".repeat(65_536) });
  assert.equal(at.truncated, true);
  await assert.rejects(embeddingJob({ organizationId: "org_1", content: "x".repeat(65_537) }), {
    code: "invalid_request",
    message: "`content` is over 65536 characters",
  });
});
