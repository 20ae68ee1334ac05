// Test driver: runs the Action under Node.js with a stub event, as Auth0 would.
// usage: node run-action.js <resetrelay-url> <action-secret> <auth0-domain> <user-id> [email]
// An empty <user-id> ('') leaves event.user.user_id out, as Auth0 may (it is optional).
const action = require("./post-change-password.js");

const [url, secret, domain, userId, email] = process.argv.slice(2);
const user = { email: email || "someone@example.com" };
if (userId) user.user_id = userId;
const event = {
  user,
  connection: { name: "Username-Password-Authentication" },
  secrets: { RESETRELAY_URL: url, RESETRELAY_ACTION_SECRET: secret, AUTH0_DOMAIN: domain },
};
const api = {};
action
  .onExecutePostChangePassword(event, api)
  .then(() => console.log("ok"))
  .catch((err) => {
    console.error(err.message);
    process.exit(1);
  });
