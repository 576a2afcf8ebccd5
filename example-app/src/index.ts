// An application Worker as a customer of D1 embeddings would write it: better-auth for
// accounts and organizations on the same D1 database as the gateway, and d1-embeddings-client
// for searches (over the SEARCH service binding) and custom-pipeline jobs (onto the queue).
// Every /app route is allowed to the member's role by embeddings.toml's access rules, as the
// gateway's route for the same call is (src/access.ts); better-auth knows every role they name.
//   /api/auth/*                   better-auth (sign-up, sign-in, organizations, sessions)
//   POST /app/search/:service     {text, limit?, threshold?, filters?, storyId? (a shorthand)}
//   POST /app/gray-zone/:service  {text, min?, max?, limit?, filters?, storyId?}
//   POST /app/embed/:service      {text} → {model, dimensions, vector}
//   POST /app/pipeline            {content, model?, table?, id?} → 202 {queued, jobId, model}
//   GET /                         what this is, and how to sign up
import { createAuth } from "./auth";
import type { Env } from "./env";
import { errorResponse, HttpError } from "./http";
import { welcome } from "./welcome";
import { pipelineRoute, serviceActions, serviceRoute, type ServiceAction } from "./routes";
import { activeMember } from "./tenant";

export default {
  async fetch(request, env): Promise<Response> {
    try {
      return await route(request, env);
    } catch (error) {
      return errorResponse(error);
    }
  },
} satisfies ExportedHandler<Env>;

async function route(request: Request, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const auth = createAuth(env, request);
  if (url.pathname.startsWith("/api/auth/")) return auth.handler(request);
  if (url.pathname === "/" && request.method === "GET") return welcome(url.origin);

  const [app, action, service, ...rest] = url.pathname.split("/").filter(Boolean);
  if (app !== "app" || rest.length > 0) throw new HttpError(404, "not_found", `no route ${url.pathname}`);
  const isPipeline = action === "pipeline" && service === undefined;
  const isService = serviceActions.includes(action as ServiceAction) && service !== undefined;
  if (!isPipeline && !isService) throw new HttpError(404, "not_found", `no route ${url.pathname}`);
  if (request.method !== "POST") throw new HttpError(405, "method_not_allowed", "use POST");

  const member = await activeMember(auth, env, request);
  if (isPipeline) return pipelineRoute(env, member, request);
  return serviceRoute(env, member, action as ServiceAction, service!, request);
}
