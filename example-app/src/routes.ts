// The app's own routes under /app, each for the caller's active organization, each one call of
// d1-embeddings-client. A body's fields beside the text are the client's options as given
// (`limit`, `filters`, a shorthand such as `storyId` …): the client checks every name and value
// before it calls, and its refusal is a 400 like the gateway's.
import { createEmbeddings, embeddingJob, sendJob, services } from "d1-embeddings-client";
import type { EmbeddingJobInput, GrayZoneOptions, SearchOptions, ServiceName } from "d1-embeddings-client";
import type { Env } from "./env";
import { HttpError, json, present, readBody, text } from "./http";

/** The routes that name a search service: /app/{action}/{service}. */
export const serviceActions = ["search", "gray-zone", "embed"] as const;
export type ServiceAction = (typeof serviceActions)[number];

export async function serviceRoute(
  env: Env,
  organizationId: string,
  action: ServiceAction,
  name: string,
  request: Request,
): Promise<Response> {
  if (!isServiceName(name)) throw new HttpError(404, "not_found", `no search service \`${name}\``);
  const service = createEmbeddings(env, { organizationId })[name];
  const body = await readBody(request);
  const query = text(body, "text");
  switch (action) {
    case "search":
      return json(await service.search(query, options(body) as SearchOptions<ServiceName>));
    case "gray-zone":
      return json(await service.findWithGrayZone(query, options(body) as GrayZoneOptions<ServiceName>));
    case "embed": {
      // The gateway's answer to an embed: the model, and the vector with its length.
      const vector = await service.embed(query);
      return json({ model: services[name].model, dimensions: vector.length, vector });
    }
  }
}

/** POST /app/pipeline: a custom pipeline's job, straight onto the queue → 202 with its id. */
export async function pipelineRoute(env: Env, organizationId: string, request: Request): Promise<Response> {
  const body = await readBody(request);
  const input = { organizationId, content: text(body, "content"), ...present(body, ["model", "table", "id"]) };
  const job = await embeddingJob(input as EmbeddingJobInput);
  await sendJob(env.EMBEDDINGS_QUEUE, job);
  return json({ queued: true, jobId: job.jobId, model: job.model }, 202);
}

function isServiceName(name: string): name is ServiceName {
  return Object.hasOwn(services, name);
}

/** A search body's options: every field but the text. */
function options(body: Record<string, unknown>): Record<string, unknown> {
  const { text: _, ...rest } = body;
  return rest;
}
