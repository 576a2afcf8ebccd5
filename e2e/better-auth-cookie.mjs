// Prints the Cookie header better-auth sets for a session token, made by better-auth's own
// signing code: `serializeSignedCookie` of better-call, the package better-auth signs its
// cookies with (pinned in wrangler/package.json at the version better-auth depends on).
//
//   node e2e/better-auth-cookie.mjs TOKEN SECRET
//
// The end-to-end suite signs in with this cookie to prove the gateway accepts real better-auth
// cookies, not only ones its own Rust code made.
const [token, secret] = process.argv.slice(2);
if (!token || !secret) {
  console.error("usage: node e2e/better-auth-cookie.mjs TOKEN SECRET");
  process.exit(2);
}
const module = new URL("../wrangler/node_modules/better-call/dist/index.mjs", import.meta.url);
const { serializeSignedCookie } = await import(module.href);
const cookie = await serializeSignedCookie("better-auth.session_token", token, secret);
// `serializeSignedCookie` writes a Set-Cookie value; a client sends back its first pair.
console.log(cookie.split(";")[0]);
