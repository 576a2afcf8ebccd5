/**
 * The queue message of an embedding job (`shared::message::EmbeddingJob`), for custom pipelines
 * that send to `embeddings-queue` themselves. A job is held here to every rule consumer-worker
 * checks, so that a bad one fails in its sender, not in the dead-letter queue.
 *
 * @module
 */

import { isTableName, knownModel } from "./catalogue.ts";
import {
  defaultModel,
  maxInputChars,
  maxRecordIdBytes,
  maxTextChars,
  messageVersion,
  tables,
  whitespace,
} from "./embeddings.generated.ts";
import type { ModelName, TableName } from "./embeddings.generated.ts";
import { EmbeddingsError, invalid } from "./errors.ts";
import { isObject } from "./rpc.ts";

/** An embedding job as the queue carries it. */
export interface EmbeddingJob {
  readonly version: typeof messageVersion;
  /** A UUID, lowercase. */
  readonly jobId: string;
  readonly organizationId: string;
  readonly model: ModelName;
  /** What the model reads of the content: at most {@link maxInputChars} characters. */
  readonly content: string;
  /** {@link contentHash} of `model` and `content`. */
  readonly contentHash: string;
  /** The table whose record `id` receives the vector; with `id`, or neither. */
  readonly table?: TableName;
  readonly id?: string;
  /** {@link contentHash} of the record's embedded fields when the job was made (api-worker's jobs). */
  readonly recordHash?: string;
  /** Deliveries that failed before this one: 0 for a new job. */
  readonly attempt: number;
  /** Present, and true, when the content was cut to what the model reads. */
  readonly truncated?: true;
}

/** What a new job is made of. */
export type EmbeddingJobInput = {
  readonly organizationId: string;
  /** The text to embed; cut, as consumer-worker would, to what the model reads. */
  readonly content: string;
  /** The table's model with `table`, the default model without. */
  readonly model?: ModelName;
  /** A UUID; a random one when absent. */
  readonly jobId?: string;
} & ({ readonly table: TableName; readonly id: string } | { readonly table?: never; readonly id?: never });

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A record id (`shared::guard::record_id`): ASCII letters, digits, `_`, `-`, `.` or `:`. */
const recordId = new RegExp(`^[A-Za-z0-9_.:-]{1,${maxRecordIdBytes}}$`);
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** `shared::models::truncate` cuts at the last whitespace among the final characters kept. */
const wordWindow = 64;

/**
 * A new job, first attempt, checked as consumer-worker checks it and as the workers check an
 * enqueue ({@link resolve}). The model must be the table's when a table is named: a vector of
 * another model could not be searched with its records. Content over {@link maxInputChars}
 * characters is cut exactly as `shared::models::truncate` cuts it, and the job says so
 * (`truncated`).
 */
export async function embeddingJob(input: EmbeddingJobInput): Promise<EmbeddingJob> {
  const { organizationId } = input;
  if (typeof organizationId !== "string" || organizationId === "") {
    throw invalid("`organizationId` must be a non-empty string");
  }
  if (typeof input.content !== "string" || loneSurrogate.test(input.content)) {
    throw invalid("`content` must be a string of well-formed Unicode");
  }
  const { model, table, id } = resolve(input);
  const { content, truncated } = truncate(input.content);
  if (isBlank(content)) {
    // The consumer refuses a job with blank content: what the model reads must not be blank.
    throw invalid(`\`content\` must not be empty in what the model reads (its first ${maxInputChars} characters)`);
  }
  const job: EmbeddingJob = {
    version: messageVersion,
    jobId: jobIdOf(input.jobId),
    organizationId,
    model,
    content,
    contentHash: await contentHash(model, content),
    ...(table === undefined ? {} : { table, id }),
    attempt: 0,
    ...(truncated ? { truncated: true } : {}),
  };
  return job;
}

/** What an enqueue resolves to: the job's model, and its record if it has one. */
type Resolved = { readonly model: ModelName } & (
  | { readonly table: TableName; readonly id: string }
  | { readonly table?: never; readonly id?: never }
);

/**
 * The enqueue rule (`shared::enqueue::resolve`), step for step and message for message: the
 * text, the model, `table` and `id` together, the table, the record id, the table's model. The
 * golden cases in `test/enqueue.golden.json`, rendered from the Rust rule by `client-types`,
 * hold the two together.
 */
function resolve(input: EmbeddingJobInput): Resolved {
  const { content, table, id } = input;
  if (isBlank(content)) throw invalid("`content` must not be empty");
  if (content.length > maxTextChars && Array.from(content).length > maxTextChars) {
    throw invalid(`\`content\` is over ${maxTextChars} characters`);
  }
  const requested = input.model === undefined ? defaultModel : knownModel(input.model);
  if ((table === undefined) !== (id === undefined)) throw invalid("give `table` and `id` together, or neither");
  if (table === undefined) return { model: requested };
  if (!isTableName(table)) throw new EmbeddingsError("not_found", `\`${String(table)}\` is not an embedding table`);
  if (typeof id !== "string" || !recordId.test(id)) {
    throw invalid(`\`id\` must be 1 to ${maxRecordIdBytes} characters of letters, digits, \`_\`, \`-\`, \`.\` or \`:\``);
  }
  const model = tables[table].model;
  if (input.model !== undefined && requested !== model) {
    throw invalid(`table \`${table}\` embeds with \`${model}\`; its vectors cannot mix models`);
  }
  return { model, table, id };
}

/**
 * Sends `job` to the queue (bound as `EMBEDDINGS_QUEUE` to api-worker: bind the same queue),
 * after checking it as consumer-worker will.
 */
export async function sendJob(queue: Queue<EmbeddingJob>, job: EmbeddingJob): Promise<void> {
  await checkJob(job);
  await queue.send(job, { contentType: "json" });
}

/** The fields of a job, each once: the consumer refuses any other. */
const jobFields: readonly string[] = [
  "version",
  "jobId",
  "organizationId",
  "model",
  "content",
  "contentHash",
  "table",
  "id",
  "recordHash",
  "attempt",
  "truncated",
] satisfies (keyof EmbeddingJob)[];

/** Throws what consumer-worker would find wrong with `job` (`EmbeddingJob::decode`). */
export async function checkJob(job: unknown): Promise<void> {
  if (!isObject(job)) throw invalid("a job must be an object");
  if (job["version"] !== messageVersion) {
    throw invalid(`a job's \`version\` must be ${messageVersion}`);
  }
  const unknown = Object.keys(job).filter((field) => !jobFields.includes(field));
  if (unknown.length > 0) throw invalid(`a job has no field \`${unknown.join("`, `")}\``);
  const { jobId, organizationId, model, content, table, id, recordHash, attempt, truncated } = job;
  if (typeof jobId !== "string" || !uuid.test(jobId)) throw invalid("`jobId` must be a UUID");
  if (typeof organizationId !== "string") throw invalid("`organizationId` must be a string");
  knownModel(model);
  if ((table === undefined) !== (id === undefined) || (recordHash !== undefined && table === undefined)) {
    throw invalid("`table` and `id` must be given together, and `recordHash` only with them");
  }
  for (const [name, value] of Object.entries({ table, id, recordHash })) {
    if (value !== undefined && typeof value !== "string") throw invalid(`\`${name}\` must be a string`);
  }
  if (attempt !== undefined && !(Number.isInteger(attempt) && (attempt as number) >= 0 && (attempt as number) <= 0xffff_ffff)) {
    throw invalid("`attempt` must be a whole number from 0");
  }
  if (truncated !== undefined && typeof truncated !== "boolean") throw invalid("`truncated` must be a boolean");
  if (typeof content !== "string" || loneSurrogate.test(content) || isBlank(content)) {
    throw invalid("`content` must be well-formed, non-blank text");
  }
  if (job["contentHash"] !== (await contentHash(model as string, content))) {
    throw invalid("`contentHash` does not match the model and content");
  }
}

/**
 * SHA-256, in lowercase hex, of the model name's UTF-8 bytes, one 0 byte and the content's
 * UTF-8 bytes (`shared::message::content_hash`): the same text under another model is other
 * content.
 */
export async function contentHash(model: string, content: string): Promise<string> {
  const encoder = new TextEncoder();
  const name = encoder.encode(model);
  const text = encoder.encode(content);
  const bytes = new Uint8Array(name.length + 1 + text.length);
  bytes.set(name);
  bytes.set(text, name.length + 1);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * What a model is given of `content` (`shared::models::truncate`): at most
 * {@link maxInputChars} characters (code points), ending at the last whitespace of the final
 * 64 when there is one, whitespace trimmed from the end.
 */
export function truncate(content: string): { content: string; truncated: boolean } {
  const chars = Array.from(content);
  if (chars.length <= maxInputChars) return { content, truncated: false };
  let end = maxInputChars;
  for (let i = maxInputChars - 1; i >= Math.max(0, maxInputChars - wordWindow); i--) {
    if (isWhitespace(chars[i])) {
      end = i;
      break;
    }
  }
  while (end > 0 && isWhitespace(chars[end - 1])) end--;
  return { content: chars.slice(0, end).join(""), truncated: true };
}

function jobIdOf(jobId: unknown): string {
  if (jobId === undefined) return crypto.randomUUID();
  if (typeof jobId !== "string" || !uuid.test(jobId)) throw invalid("`jobId` must be a UUID");
  return jobId.toLowerCase();
}

function isWhitespace(char: string | undefined): boolean {
  return char !== undefined && whitespace.test(char);
}

/** Nothing but whitespace, as Rust's `str::trim` sees it. */
function isBlank(text: string): boolean {
  return Array.from(text).every(isWhitespace);
}
