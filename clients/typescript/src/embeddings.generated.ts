// Generated from embeddings.toml by `cargo run -p client-types`: do not edit it by hand.
// `cargo run -p client-types -- --check` (and `cargo test`) fail when it is out of date.

import type { FieldFilter } from "./filter.ts";

/** Every model the product accepts, by Workers AI name, with the length of its vectors. */
export const models = {
  "@cf/baai/bge-small-en-v1.5": { dimensions: 384 },
  "@cf/baai/bge-base-en-v1.5": { dimensions: 768 },
  "@cf/baai/bge-large-en-v1.5": { dimensions: 1024 },
} as const;

/** The model of a job that names neither a model nor a table. */
export const defaultModel = "@cf/baai/bge-base-en-v1.5";

/** The embedding tables: each one's model, its vectors' length and its metadata fields. */
export const tables = {
  claims: { model: "@cf/baai/bge-base-en-v1.5", dimensions: 768, metadata: ["story_id"] },
  notes: { model: "@cf/baai/bge-small-en-v1.5", dimensions: 384, metadata: ["topic"] },
  evidence: { model: "@cf/baai/bge-base-en-v1.5", dimensions: 768, metadata: ["story_id"] },
} as const;

/**
 * The search services: each one's table, the table's metadata fields, its model and its vectors'
 * length, and `shorthands`: by alias, the field each camelCase alias stands for as an equality
 * filter (`storyId` for `story_id`). A field has no shorthand when its alias is another field's
 * too, or an option's name: `filters`, `limit`, `threshold`, `min`, `max`.
 */
export const services = {
  /**
   * Searches `claims`: 5 matches unless asked; DUPLICATE from 0.9, CONFIRMS from 0.85,
   * RELATED from 0.75; gray zone 0.6 to 0.85.
   */
  claimSimilarity: {
    table: "claims",
    metadata: ["story_id"],
    shorthands: { storyId: "story_id" },
    model: "@cf/baai/bge-base-en-v1.5",
    dimensions: 768,
  },
  /**
   * Searches `notes`: 10 matches unless asked; DUPLICATE from 0.9, CONFIRMS from 0.85,
   * RELATED from 0.75; gray zone 0.6 to 0.85.
   */
  noteSearch: {
    table: "notes",
    metadata: ["topic"],
    shorthands: { topic: "topic" },
    model: "@cf/baai/bge-small-en-v1.5",
    dimensions: 384,
  },
  /**
   * Searches `evidence`: 5 matches unless asked; DUPLICATE from 0.9, CONFIRMS from 0.85,
   * RELATED from 0.75; gray zone 0.6 to 0.85.
   */
  evidenceSearch: {
    table: "evidence",
    metadata: ["story_id"],
    shorthands: { storyId: "story_id" },
    model: "@cf/baai/bge-base-en-v1.5",
    dimensions: 768,
  },
} as const;

/** What a role may be allowed to do (`shared::access::Action`). */
export const actions = ["read", "create", "update", "delete", "search", "embed", "admin"] as const;

/** better-auth's organization roles (owner, admin, member), then every other role embeddings.toml names. */
export const roles = ["owner", "admin", "member", "viewer"] as const;

/**
 * Who may do what, as the gateway decides it (`shared::access` over `[access]`, each table's
 * `[table.access]` and the defaults): per action, the roles allowed. `project` is the rule for
 * what is tied to no table (a job for free content, a raw embed, API keys); `tables`, for a
 * table's records, its search services and the jobs bound to its records. A role not listed
 * may not.
 */
export const access = {
  project: {
    read: ["owner", "admin", "member", "viewer"],
    create: ["owner", "admin", "member"],
    update: ["owner", "admin", "member"],
    delete: ["owner", "admin"],
    search: ["owner", "admin", "member", "viewer"],
    embed: ["owner", "admin", "member"],
    admin: ["owner", "admin"],
  },
  tables: {
    claims: {
      read: ["owner", "admin", "member", "viewer"],
      create: ["owner", "admin", "member"],
      update: ["owner", "admin", "member"],
      delete: ["owner", "admin"],
      search: ["owner", "admin", "member", "viewer"],
      embed: ["owner", "admin", "member"],
      admin: ["owner", "admin"],
    },
    notes: {
      read: ["owner", "admin", "member", "viewer"],
      create: ["owner", "admin", "member"],
      update: ["owner", "admin", "member"],
      delete: ["owner", "admin"],
      search: ["owner", "admin", "member", "viewer"],
      embed: ["owner", "admin", "member"],
      admin: ["owner", "admin"],
    },
    evidence: {
      read: ["owner", "admin", "member", "viewer"],
      create: ["owner", "admin", "member"],
      update: ["owner", "admin", "member"],
      delete: ["owner", "admin"],
      search: ["owner", "admin", "member", "viewer"],
      embed: ["owner", "admin", "member"],
      admin: ["owner", "admin"],
    },
  },
} as const;

/** The queue message version consumer-worker reads (`shared::message::MESSAGE_VERSION`). */
export const messageVersion = 1;

/** Most characters (code points) of content a job carries (`shared::models::MAX_INPUT_CHARS`). */
export const maxInputChars = 2048;

/** One whitespace character, as Rust's `char::is_whitespace` takes it (`shared::guard::WHITESPACE`). */
export const whitespace = /[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000]/u;

/** Most characters (code points) of text a request may carry (`shared::guard::MAX_TEXT_CHARS`). */
export const maxTextChars = 65536;

/** Longest record id, in bytes (`shared::guard::MAX_RECORD_ID_BYTES`). */
export const maxRecordIdBytes = 64;

/** A model's Workers AI name. */
export type ModelName = keyof typeof models;
/** An embedding table's name. */
export type TableName = keyof typeof tables;
/** A search service's name. */
export type ServiceName = keyof typeof services;
/** Something a role may be allowed to do. */
export type Action = (typeof actions)[number];
/** An organization role embeddings.toml names, or one of better-auth's own. */
export type RoleName = (typeof roles)[number];

/** A filter on `claims`: on `story_id` (api-worker's `Filter_claims`). */
export type Filter_claims = FieldFilter<"story_id">;

/** A filter on `notes`: on `topic` (api-worker's `Filter_notes`). */
export type Filter_notes = FieldFilter<"topic">;

/** A filter on `evidence`: on `story_id` (api-worker's `Filter_evidence`). */
export type Filter_evidence = FieldFilter<"story_id">;

/** Each table's filter, by table. */
export interface TableFilters {
  claims: Filter_claims;
  notes: Filter_notes;
  evidence: Filter_evidence;
}
