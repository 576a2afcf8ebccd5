/**
 * `createEmbeddings`: search-worker's RPC methods, one object per search service, typed by
 * embeddings.toml, plus the calls that name no service under `$`.
 *
 * @module
 */

import { readEnqueued, readGrayZone, readMatches, readQueryMatches, readVector } from "./answers.ts";
import { isModelName, knownModel } from "./catalogue.ts";
import { defaultModel, models, services } from "./embeddings.generated.ts";
import type { ModelName, ServiceName, TableFilters, TableName } from "./embeddings.generated.ts";
import { EmbeddingsError, invalid } from "./errors.ts";
import { compactFilter, defined, serviceRequest } from "./options.ts";
import type { DimensionsOf, GrayZoneOptions, SearchOptions } from "./options.ts";
import { call } from "./rpc.ts";
import type { Classification, SearchRpc } from "./rpc.ts";

/** A vector of `Dimensions` numbers: its `length` is its model's dimension. */
export type Vector<Dimensions extends number = number> = number[] & { readonly length: Dimensions };

/** One match of a search, best first. */
export interface Match {
  /** The record's id in the service's table. */
  readonly id: string;
  /** Cosine similarity to the query text, -1 to 1, in every mode: the vector score. */
  readonly score: number;
  /** The score's class under the service's thresholds. */
  readonly classification: Classification;
  /** The record's metadata fields (see the service's `metadata`); a null one is left out. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** Its place in the vector search's ranking, from 1 (`semantic` and `hybrid` modes). */
  readonly vectorRank?: number;
  /** Its BM25 score in the keyword index, higher is better (`keyword` and `hybrid`). */
  readonly keywordScore?: number;
  /** Its place in the keyword search's ranking, from 1. */
  readonly keywordRank?: number;
  /** Its reciprocal-rank-fusion score (`hybrid`), what the matches are ordered by. */
  readonly fusedScore?: number;
}

/** A gray-zone search: the confident matches (from `max`), and those to review (`min` to `max`). */
export interface GrayZoneMatches {
  readonly highConfidence: Match[];
  readonly grayZone: Match[];
}

/** One search service of embeddings.toml. */
export interface ServiceClient<S extends ServiceName> {
  /**
   * The records most similar to `text`, best first. `{ storyId: "story_123", limit: 5 }` is
   * `{ filters: { story_id: "story_123" }, limit: 5 }`.
   */
  search(text: string, options?: SearchOptions<S>): Promise<Match[]>;
  /** The matches from `min`, split at `max` into high confidence and gray zone. */
  findWithGrayZone(text: string, options?: GrayZoneOptions<S>): Promise<GrayZoneMatches>;
  /** The vector of `text` under the service's model, as its searches embed it. */
  embed(text: string): Promise<Vector<DimensionsOf<S>>>;
}

/** A model's vector length. */
export type DimensionsOfModel<M extends ModelName> = (typeof models)[M]["dimensions"];

/** Options of `$.query`. */
export interface QueryOptions<T extends TableName> {
  /** The table queried; without it, the one table whose model has the vector's dimension. */
  readonly table?: T;
  /** Matches to return, 1 to 100 (5 when absent). */
  readonly topK?: number;
  /** On the table's metadata fields, in Vectorize's operators. */
  readonly filter?: TableFilters[T];
  /** Return each match's metadata (true when absent). */
  readonly returnMetadata?: boolean;
}

/** One match of a vector query. */
export interface QueryMatch {
  readonly id: string;
  readonly score: number;
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/**
 * Options of `$.enqueue`: the model by a service, by name or the default; a record's vector
 * when `table` and `id` are given (together).
 */
export type EnqueueOptions = (
  | { readonly service?: ServiceName; readonly model?: never }
  | { readonly model?: ModelName; readonly service?: never }
) &
  ({ readonly table: TableName; readonly id: string } | { readonly table?: never; readonly id?: never });

/** A job on the queue. */
export interface Enqueued {
  readonly jobId: string;
  readonly model: ModelName;
}

/** The calls that name no search service. */
export interface Calls {
  /** The vector of `text` under `model` (the default model when absent). */
  embed<M extends ModelName = typeof defaultModel>(
    text: string,
    options?: { readonly model?: M },
  ): Promise<Vector<DimensionsOfModel<M>>>;
  /** The stored vectors nearest `vector`, in a table of its dimension. */
  query<T extends TableName = TableName>(vector: readonly number[], options?: QueryOptions<T>): Promise<QueryMatch[]>;
  /** An embedding job for `text`, sent to the queue by search-worker. */
  enqueue(text: string, options?: EnqueueOptions): Promise<Enqueued>;
}

/**
 * The client: one property per search service, and `$` for the calls that name none (`$`
 * cannot be a service's name, which is letters, digits, `_` and `-`).
 */
export type Embeddings = { readonly [S in keyof typeof services]: ServiceClient<S> } & { readonly $: Calls };

/** Where the client finds search-worker, and for whom it calls. */
export interface EmbeddingsOptions<Binding extends string> {
  /** The organization every call is made for; search-worker trusts it. */
  readonly organizationId: string;
  /** The name of the service binding to search-worker in `env` (`SEARCH` when absent). */
  readonly binding?: Binding;
}

/**
 * The client of search-worker for `organizationId`, through the service binding `binding` of
 * `env`. Every call answers its value or throws an {@link EmbeddingsError}.
 */
export function createEmbeddings<Binding extends string = "SEARCH">(
  env: { readonly [K in NoInfer<Binding>]: unknown },
  options: EmbeddingsOptions<Binding>,
): Embeddings {
  const binding: string = options.binding ?? "SEARCH";
  const rpc: unknown = (env as Readonly<Record<string, unknown>>)[binding];
  if (!isSearchRpc(rpc)) {
    throw new EmbeddingsError("internal", `\`env.${binding}\` is not a service binding to search-worker`);
  }
  const { organizationId } = options;
  if (typeof organizationId !== "string" || organizationId === "") {
    throw invalid("`organizationId` must be a non-empty string");
  }
  const client = {};
  for (const name of Object.keys(services) as ServiceName[]) {
    // Defined, not assigned: a service named `__proto__` is a property like any other.
    Object.defineProperty(client, name, { value: serviceClient(rpc, organizationId, name), enumerable: true });
  }
  Object.defineProperty(client, "$", { value: calls(rpc, organizationId), enumerable: true });
  return Object.freeze(client) as Embeddings;
}

function isSearchRpc(value: unknown): value is SearchRpc {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { search?: unknown }).search === "function"
  );
}

function serviceClient<S extends ServiceName>(rpc: SearchRpc, organizationId: string, name: S): ServiceClient<S> {
  const dimensions = services[name].dimensions;
  return {
    // Async, so that a request refused before the call is a rejection like any other error.
    search: async (text, options) =>
      call(rpc, "search", [organizationId, name, serviceRequest(name, "search", text, options)], readMatches),
    findWithGrayZone: async (text, options) =>
      call(
        rpc,
        "grayZone",
        [organizationId, name, serviceRequest(name, "findWithGrayZone", text, options)],
        readGrayZone,
      ),
    embed: async (text) =>
      (await call(
        rpc,
        "embed",
        [organizationId, { text, service: name }],
        readVector(dimensions),
      )) as Vector<DimensionsOf<S>>,
  };
}

function calls(rpc: SearchRpc, organizationId: string): Calls {
  return {
    async embed<M extends ModelName>(text: string, options?: { readonly model?: M }) {
      const model = options?.model === undefined ? defaultModel : knownModel(options.model);
      const request = defined({ text, model: options?.model });
      const vector = await call(rpc, "embed", [organizationId, request], readVector(models[model].dimensions));
      return vector as Vector<DimensionsOfModel<M>>;
    },
    query: async (vector, options) => {
      const request = defined({ ...options, vector, filter: compactFilter(options?.filter, "filter") });
      return call(rpc, "query", [organizationId, request], readQueryMatches);
    },
    enqueue: async (text, options) =>
      call(rpc, "enqueue", [organizationId, defined({ ...options, text })], (value) => {
        const enqueued = readEnqueued(value);
        return enqueued && isModelName(enqueued.model) ? { jobId: enqueued.jobId, model: enqueued.model } : undefined;
      }),
  };
}
