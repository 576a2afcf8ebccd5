// better-auth on the shared D1 database. better-auth 1.7 takes a D1 binding as it is
// (`database: env.DB`, run through its own Kysely D1 dialect), so there is no adapter to set up.
import { betterAuth } from "better-auth";
import { schemaOptions } from "./auth-options";
import type { Env } from "./env";

// One instance a request: the secret and the base URL come with the request's env and URL.
export function createAuth(env: Env, request: Request) {
  return betterAuth({
    ...schemaOptions,
    database: env.DB,
    secret: env.BETTER_AUTH_SECRET,
    // The origin the app is reached at: better-auth trusts it for the origin check of cookie
    // requests, and sets `__Secure-` cookies when it is https.
    baseURL: new URL(request.url).origin,
  });
}

export type Auth = ReturnType<typeof createAuth>;
