/**
 * Auth0 Action (trigger: Post Change Password) for resetrelay.
 *
 * Tells resetrelay that a user's password changed outside it (Auth0's own reset
 * page, the Management API, a support agent), so every reset link resetrelay
 * mailed earlier stops working.
 *
 * Secrets (Action settings -> Secrets):
 *   RESETRELAY_URL            e.g. https://reset.example.com
 *   RESETRELAY_ACTION_SECRET  the same value as resetrelay's AUTH0_ACTION_SECRET
 *   AUTH0_DOMAIN              your tenant domain, e.g. acme.eu.auth0.com
 *
 * The request carries a short-lived HS256 JWT bound to the exact body
 * (claim body_sha256) with a one-time jti; it uses only Node's built-in crypto.
 */
const crypto = require("crypto");

function base64url(input) {
  return Buffer.from(input).toString("base64").replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

function signHS256(claims, secret) {
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = base64url(JSON.stringify(claims));
  const signature = crypto.createHmac("sha256", secret).update(`${header}.${payload}`).digest();
  return `${header}.${payload}.${base64url(signature)}`;
}

exports.onExecutePostChangePassword = async (event, api) => {
  const body = JSON.stringify({
    type: "post_change_password",
    user: { user_id: event.user.user_id },
    connection: event.connection && event.connection.name,
  });
  const now = Math.floor(Date.now() / 1000);
  const token = signHS256(
    {
      iss: `https://${event.secrets.AUTH0_DOMAIN}/`,
      aud: "resetrelay",
      iat: now,
      exp: now + 120,
      jti: crypto.randomUUID(),
      body_sha256: crypto.createHash("sha256").update(body).digest("hex"),
    },
    event.secrets.RESETRELAY_ACTION_SECRET,
  );
  const response = await fetch(`${event.secrets.RESETRELAY_URL.replace(/\/$/, "")}/hooks/auth0/actions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body,
  });
  if (!response.ok) {
    // Throwing marks the Action failed in Auth0's logs; the password change stands.
    throw new Error(`resetrelay answered ${response.status}`);
  }
};
