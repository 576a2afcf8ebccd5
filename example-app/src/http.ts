// JSON answers, and the one place every error becomes a status and the gateway's error body,
// `{"error": {"code", "message"}}`.
import { EmbeddingsError } from "d1-embeddings-client";

/** An error this app answers with itself: a status and one of the gateway's error codes. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function json(body: unknown, status = 200): Response {
  return Response.json(body, { status });
}

export function errorResponse(error: unknown): Response {
  if (error instanceof HttpError || error instanceof EmbeddingsError) {
    return json({ error: { code: error.code, message: error.message } }, error.status);
  }
  console.error("unexpected error", error);
  return json({ error: { code: "internal", message: "internal error" } }, 500);
}

/** The request's JSON object body; anything else is a 400. */
export async function readBody(request: Request): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    throw new HttpError(400, "malformed_json", "the body is not JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "invalid_request", "the body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

/** A required string field of a body. */
export function text(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== "string") {
    throw new HttpError(400, "invalid_request", `\`${field}\` must be a string`);
  }
  return value;
}

/** The fields of `body` that are present, for passing on as options (the service checks them). */
export function present(body: Record<string, unknown>, fields: string[]): Record<string, unknown> {
  return Object.fromEntries(fields.filter((f) => body[f] !== undefined).map((f) => [f, body[f]]));
}
