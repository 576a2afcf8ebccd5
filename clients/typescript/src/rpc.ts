/**
 * search-worker's RPC interface as it crosses the binding (`shared::rpc`): the requests, the
 * outcome envelope every method answers with, and the one place an answer becomes a value or
 * a thrown {@link EmbeddingsError}.
 *
 * @module
 */

import { EmbeddingsError, isErrorCode } from "./errors.ts";
import type { ErrorCode } from "./errors.ts";
import type { Condition } from "./filter.ts";

/** A method's answer: the value, or the error as data. */
export type Outcome<T> =
  | { readonly ok: true; readonly value: T }
  | {
      readonly ok: false;
      readonly error: { readonly code: ErrorCode; readonly status: number; readonly message: string };
    };

/** A filter as it is sent: checked against the table's metadata fields by search-worker. */
export type WireFilter = { readonly [field: string]: Condition };

/** How well a match fits, from the service's thresholds. */
export type Classification = "DUPLICATE" | "CONFIRMS" | "RELATED" | "NEW";

/** How a search finds and orders its matches: by meaning (the default), by words, or both fused. */
export type SearchMode = "semantic" | "keyword" | "hybrid";

/** One match of a search, as search-worker sends it. */
export interface WireMatch {
  readonly id: string;
  readonly score: number;
  readonly classification: Classification;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly vector_rank?: number;
  readonly keyword_score?: number;
  readonly keyword_rank?: number;
  readonly fused_score?: number;
}

/** One match of a vector query, as search-worker sends it. */
export interface WireQueryMatch {
  readonly id: string;
  readonly score: number;
  readonly metadata?: Readonly<Record<string, unknown>>;
}

export interface SearchRequest {
  readonly text: string;
  readonly filters?: WireFilter;
  readonly limit?: number;
  readonly threshold?: number;
  readonly mode?: SearchMode;
}

export interface GrayZoneRequest {
  readonly text: string;
  readonly min?: number;
  readonly max?: number;
  readonly filters?: WireFilter;
  readonly limit?: number;
  readonly mode?: SearchMode;
}

export interface EmbedRequest {
  readonly text: string;
  readonly service?: string;
  readonly model?: string;
}

export interface QueryRequest {
  readonly vector: readonly number[];
  readonly topK?: number;
  readonly filter?: WireFilter;
  readonly table?: string;
  readonly returnMetadata?: boolean;
}

export interface EnqueueRequest {
  readonly text: string;
  readonly service?: string;
  readonly model?: string;
  readonly table?: string;
  readonly id?: string;
}

/**
 * search-worker's default entrypoint, as a service binding to it exposes it. Each method takes
 * the organization first: search-worker trusts it, since binding to it is a privileged act.
 */
export interface SearchRpc {
  search(organizationId: string, service: string, request: SearchRequest): Promise<Outcome<WireMatch[]>>;
  grayZone(
    organizationId: string,
    service: string,
    request: GrayZoneRequest,
  ): Promise<Outcome<{ high_confidence: WireMatch[]; gray_zone: WireMatch[] }>>;
  embed(
    organizationId: string,
    request: EmbedRequest,
  ): Promise<Outcome<{ model: string; dimensions: number; vector: number[] }>>;
  query(
    organizationId: string,
    request: QueryRequest,
  ): Promise<Outcome<{ count: number; matches: WireQueryMatch[] }>>;
  enqueue(organizationId: string, request: EnqueueRequest): Promise<Outcome<{ jobId: string; model: string }>>;
}

/** A method's name. */
export type Method = keyof SearchRpc;

/**
 * Calls `method` and returns its value, read by `read` (`undefined` for a value of another
 * shape). An error outcome is thrown as it came; a call that throws is `unavailable`; an answer
 * that is not an outcome and a value of another shape are `internal`.
 */
export async function call<M extends Method, T>(
  rpc: SearchRpc,
  method: M,
  args: Parameters<SearchRpc[M]>,
  read: (value: unknown) => T | undefined,
): Promise<T> {
  let answer: unknown;
  try {
    // Called on the binding: an RPC stub's method is not to be detached from it.
    answer = await Reflect.apply(rpc[method], rpc, args);
  } catch (cause) {
    // The binding itself failed (search-worker down, or deployed without the method): the
    // request may succeed later, as the Rust client says too.
    throw new EmbeddingsError("unavailable", `search-worker's \`${method}\` failed; retry later`, { cause });
  }
  return settle(method, answer, read);
}

/** An answer of `method` as a value, or the error it is. */
export function settle<T>(method: string, answer: unknown, read: (value: unknown) => T | undefined): T {
  if (isObject(answer) && answer["ok"] === true && "value" in answer) {
    const value = read(answer["value"]);
    if (value === undefined) {
      throw new EmbeddingsError("internal", `search-worker's \`${method}\` answered a value of an unexpected shape`);
    }
    return value;
  }
  const error = isObject(answer) && answer["ok"] === false ? answer["error"] : undefined;
  if (isObject(error) && isErrorCode(error["code"]) && typeof error["message"] === "string") {
    const status = typeof error["status"] === "number" ? error["status"] : undefined;
    throw new EmbeddingsError(error["code"], error["message"], status === undefined ? undefined : { status });
  }
  throw new EmbeddingsError("internal", `search-worker's \`${method}\` did not answer with an outcome`);
}

/** A non-null, non-array object. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
