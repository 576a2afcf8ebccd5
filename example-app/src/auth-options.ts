// The better-auth options that decide the database schema, apart from the database itself, so
// that scripts/schema-check.mjs plans better-auth's migration for exactly this app.
import type { BetterAuthOptions } from "better-auth";
import { organization } from "better-auth/plugins";

export const schemaOptions = {
  emailAndPassword: { enabled: true },
  plugins: [organization()],
} satisfies BetterAuthOptions;
