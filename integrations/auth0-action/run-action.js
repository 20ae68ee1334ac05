// Test driver: runs the Action under Node.js with a stub event, as Auth0 would.
// usage: node run-action.js <resetrelay-url> <action-secret> <auth0-domain> <user-id>
const action = require("./post-change-password.js");

const [url, secret, domain, userId] = process.argv.slice(2);
const event = {
  user: { user_id: userId, email: "someone@example.com" },
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
