// Run by `npm test` (Node 22.18 or later, which runs the TypeScript sources as they are).
// The binding is a fake: an object whose methods record their arguments and answer outcomes.

import assert from "node:assert/strict";
import { test } from "node:test";

import { createEmbeddings, EmbeddingsError, isBadInput, isNotFound, isUnavailable } from "../src/index.ts";

const match = { id: "clm_1", score: 0.93, classification: "DUPLICATE", metadata: { story_id: "story_123" } };

/** A binding answering `answers[method]` (a function of the arguments, or a value). */
function fakeBinding(answers) {
  const calls = [];
  const binding = {};
  for (const method of ["search", "grayZone", "embed", "query", "enqueue"]) {
    binding[method] = async (...args) => {
      calls.push([method, ...args]);
      const answer = answers[method];
      return typeof answer === "function" ? answer(...args) : answer;
    };
  }
  return { calls, env: { SEARCH: binding } };
}

const ok = (value) => ({ ok: true, value });

test("shorthands become filters, and the organization goes first", async () => {
  const { calls, env } = fakeBinding({ search: ok([match]) });
  const embeddings = createEmbeddings(env, { organizationId: "org_1" });
  const matches = await embeddings.claimSimilarity.search("text", { storyId: "story_123", limit: 5, threshold: 0.7 });
  assert.deepEqual(matches, [match]);
  assert.deepEqual(calls, [
    ["search", "org_1", "claimSimilarity", { text: "text", limit: 5, threshold: 0.7, filters: { story_id: "story_123" } }],
  ]);
  await embeddings.claimSimilarity.search("text", { filters: { story_id: { $ne: "a" }, other: undefined } });
  assert.deepEqual(calls[1][3], { text: "text", filters: { story_id: { $ne: "a" } } });
  await embeddings.claimSimilarity.search("text", { limit: undefined });
  assert.deepEqual(calls[2][3], { text: "text" });
  assert.deepEqual(Object.keys(embeddings), ["claimSimilarity", "noteSearch", "evidenceSearch", "$"]);
});

test("a shorthand and its field in filters, or an unknown option, fail before any call", async () => {
  const { calls, env } = fakeBinding({ search: ok([]), grayZone: ok({ high_confidence: [], gray_zone: [] }) });
  const embeddings = createEmbeddings(env, { organizationId: "org_1" });
  await assert.rejects(
    embeddings.claimSimilarity.search("text", { storyId: "a", filters: { story_id: "b" } }),
    (error) => isBadInput(error) && error.code === "invalid_request" && error.message.includes("storyId"),
  );
  await assert.rejects(embeddings.claimSimilarity.search("text", { topic: "x" }), isBadInput);
  await assert.rejects(embeddings.claimSimilarity.findWithGrayZone("text", { threshold: 0.5 }), isBadInput);
  assert.deepEqual(calls, []);
});

test("a search's mode is sent, and each match's placings come back camelCased", async () => {
  const wire = { ...match, vector_rank: 2, keyword_score: 7.5, keyword_rank: 1, fused_score: 0.0325 };
  const { calls, env } = fakeBinding({ search: ok([wire, match]) });
  const embeddings = createEmbeddings(env, { organizationId: "org_1" });
  const matches = await embeddings.claimSimilarity.search("XQ-7734", { mode: "hybrid" });
  assert.deepEqual(matches, [{ ...match, vectorRank: 2, keywordScore: 7.5, keywordRank: 1, fusedScore: 0.0325 }, match]);
  assert.deepEqual(calls[0][3], { text: "XQ-7734", mode: "hybrid" });
  // A placing that is not a number is not what search-worker promises.
  const odd = fakeBinding({ search: ok([{ ...match, keyword_rank: "1" }]) });
  await assert.rejects(
    createEmbeddings(odd.env, { organizationId: "org_1" }).claimSimilarity.search("x"),
    (error) => error.code === "internal",
  );
});

test("the gray zone comes back under the client's names", async () => {
  const { calls, env } = fakeBinding({ grayZone: ok({ high_confidence: [match], gray_zone: [] }) });
  const embeddings = createEmbeddings(env, { organizationId: "org_1" });
  const zone = await embeddings.evidenceSearch.findWithGrayZone("text", { min: 0.5, storyId: "s" });
  assert.deepEqual(zone, { highConfidence: [match], grayZone: [] });
  assert.deepEqual(calls[0], ["grayZone", "org_1", "evidenceSearch", { text: "text", min: 0.5, filters: { story_id: "s" } }]);
});

test("an error outcome is thrown with its code and status; a failed call is unavailable, an odd answer internal", async () => {
  const failure = (code, status) => ({ ok: false, error: { code, status, message: `${code}!` } });
  const { env } = fakeBinding({
    search: (_, service) =>
      service === "noteSearch" ? failure("not_found", 404) : failure("unavailable", 503),
    embed: ok({ model: "m", dimensions: 3, vector: [1, 2, 3] }),
    query: { matches: [] },
    enqueue: () => {
      throw new Error("binding broke");
    },
  });
  const embeddings = createEmbeddings(env, { organizationId: "org_1" });
  await assert.rejects(embeddings.noteSearch.search("x"), (error) => {
    assert.ok(error instanceof EmbeddingsError && isNotFound(error));
    assert.deepEqual([error.code, error.status, error.message], ["not_found", 404, "not_found!"]);
    return true;
  });
  await assert.rejects(embeddings.claimSimilarity.search("x"), isUnavailable);
  const internal = (error) => error instanceof EmbeddingsError && error.code === "internal" && error.status === 500;
  await assert.rejects(embeddings.claimSimilarity.embed("x"), internal, "a vector of the wrong dimension");
  await assert.rejects(embeddings.$.query([0.1]), internal, "not an outcome");
  await assert.rejects(
    embeddings.$.enqueue("x"),
    (error) => isUnavailable(error) && error.status === 503 && error.cause instanceof Error,
    "a binding that throws",
  );
});

test("the calls that name no service", async () => {
  const vector = Array.from({ length: 384 }, () => 0.5);
  const { calls, env } = fakeBinding({
    embed: ok({ model: "@cf/baai/bge-small-en-v1.5", dimensions: 384, vector }),
    query: ok({ count: 1, matches: [{ id: "n_1", score: 0.8 }] }),
    enqueue: ok({ jobId: "00000000-0000-0000-0000-000000000000", model: "@cf/baai/bge-small-en-v1.5" }),
  });
  const embeddings = createEmbeddings(env, { organizationId: "org_1" });
  assert.equal((await embeddings.$.embed("x", { model: "@cf/baai/bge-small-en-v1.5" })).length, 384);
  assert.deepEqual(await embeddings.$.query(vector, { table: "notes", topK: undefined }), [{ id: "n_1", score: 0.8 }]);
  const enqueued = await embeddings.$.enqueue("x", { table: "notes", id: "n_1" });
  assert.equal(enqueued.model, "@cf/baai/bge-small-en-v1.5");
  assert.deepEqual(calls, [
    ["embed", "org_1", { text: "x", model: "@cf/baai/bge-small-en-v1.5" }],
    ["query", "org_1", { table: "notes", vector }],
    ["enqueue", "org_1", { table: "notes", id: "n_1", text: "x" }],
  ]);
  await assert.rejects(embeddings.$.embed("x", { model: "@cf/nope" }), (error) => error.code === "unknown_model");
});

test("a missing binding or organization is one clear error", () => {
  assert.throws(() => createEmbeddings({}, { organizationId: "org_1" }), /`env.SEARCH` is not a service binding/);
  const { env } = fakeBinding({});
  assert.throws(() => createEmbeddings(env, { organizationId: "org_1", binding: "OTHER" }), /`env.OTHER`/);
  assert.throws(() => createEmbeddings(env, { organizationId: "" }), isBadInput);
});
