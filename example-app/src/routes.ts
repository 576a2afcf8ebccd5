// The app's own routes under /app, each for the caller's active organization, each one call of
// d1-embeddings-client, each allowed to the member's role as the gateway's route for the same
// call allows it. A body's fields beside the text are the client's options as given (`limit`,
// `filters`, a shorthand such as `storyId` …): the client checks every name and value before it
// calls, and its refusal is a 400 like the gateway's.
import { createEmbeddings, embeddingJob, sendJob, services } from "d1-embeddings-client";
import type { EmbeddingJobInput, GrayZoneOptions, SearchOptions, ServiceName } from "d1-embeddings-client";
import { requireRole } from "./access";
import type { Env } from "./env";
import { HttpError, json, present, readBody, text } from "./http";
import type { Member } from "./tenant";

/** The routes that name a search service: /app/{action}/{service}. */
export const serviceActions = ["search", "gray-zone", "embed"] as const;
export type ServiceAction = (typeof serviceActions)[number];

export async function serviceRoute(
  env: Env,
  member: Member,
  action: ServiceAction,
  name: string,
  request: Request,
): Promise<Response> {
  if (!isServiceName(name)) throw new HttpError(404, "not_found", `no search service \`${name}\``);
  // The gateway's embed route checks `embed` project-wide even when a service names the model:
  // a raw vector reads no record of the service's table.
  if (action === "embed") requireRole(member, "embed");
  else requireRole(member, "search", services[name].table);
  const service = createEmbeddings(env, { organizationId: member.organizationId })[name];
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
export async function pipelineRoute(env: Env, member: Member, request: Request): Promise<Response> {
  const body = await readBody(request);
  const input = {
    organizationId: member.organizationId,
    content: text(body, "content"),
    ...present(body, ["model", "table", "id"]),
  };
  const job = await embeddingJob(input as EmbeddingJobInput);
  // Checked on the job as it will be sent, as the gateway's enqueue checks it: a job bound to a
  // record replaces the record's vector, an update of the record, so it needs the table's
  // `embed` and its `update`; a job for free content needs `embed` project-wide.
  if (job.table === undefined) {
    requireRole(member, "embed");
  } else {
    requireRole(member, "embed", job.table);
    requireRole(member, "update", job.table);
  }
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
