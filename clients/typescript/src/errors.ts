/**
 * The one error the client throws, with the project's error codes (`shared::error::ErrorCode`).
 *
 * @module
 */

/** Every error code, with its HTTP status. */
export const errorStatuses = {
  malformed_json: 400,
  invalid_request: 400,
  unknown_model: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  internal: 500,
  model_failed: 502,
  unavailable: 503,
} as const;

/** An error code, as search-worker reports it. */
export type ErrorCode = keyof typeof errorStatuses;

/** Codes of a request refused as it stands: fix it, do not retry it. */
const badInput: readonly ErrorCode[] = ["invalid_request", "malformed_json", "unknown_model"];

/**
 * A call refused or failed: search-worker's error (its code, status and message, carried as
 * data since Workers RPC carries nothing but an exception's message), a request the client
 * refuses before any call, `unavailable` for a call the binding could not make, or `internal`
 * for an answer of an unexpected shape.
 */
export class EmbeddingsError extends Error {
  /** What went wrong, as a stable code: tell cases apart by it, never by the message. */
  readonly code: ErrorCode;
  /** The HTTP status the code stands for. */
  readonly status: number;

  constructor(code: ErrorCode, message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "EmbeddingsError";
    this.code = code;
    this.status = options?.status ?? errorStatuses[code];
  }

  /** The request was refused as it stands (`invalid_request`, `malformed_json`, `unknown_model`). */
  get isBadInput(): boolean {
    return badInput.includes(this.code);
  }

  /** No such search service, table or record in the organization (`not_found`). */
  get isNotFound(): boolean {
    return this.code === "not_found";
  }

  /** A dependency cannot take the request now; retrying later may succeed (`unavailable`). */
  get isUnavailable(): boolean {
    return this.code === "unavailable";
  }
}

/** Whether `error` is an {@link EmbeddingsError} for bad input. */
export function isBadInput(error: unknown): error is EmbeddingsError {
  return error instanceof EmbeddingsError && error.isBadInput;
}

/** Whether `error` is an {@link EmbeddingsError} for something not found. */
export function isNotFound(error: unknown): error is EmbeddingsError {
  return error instanceof EmbeddingsError && error.isNotFound;
}

/** Whether `error` is an {@link EmbeddingsError} worth retrying later. */
export function isUnavailable(error: unknown): error is EmbeddingsError {
  return error instanceof EmbeddingsError && error.isUnavailable;
}

/** Whether `code` is one of the project's error codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(errorStatuses, code);
}

/** A request the client refuses before any call. */
export function invalid(message: string): EmbeddingsError {
  return new EmbeddingsError("invalid_request", message);
}
