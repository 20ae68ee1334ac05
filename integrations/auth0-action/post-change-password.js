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
 * (claim body_sha256) with a one-time jti; it uses only Node's built-in crypto
 * and fetch (Node 18 or newer; Auth0 runs Actions on Node 22).
 *
 * Auth0's event reference marks event.user.user_id optional, so the body carries
 * event.user.email too; resetrelay finds the user by address when the id is absent.
 * Auth0 ends every Action run after 20 seconds and never retries it: each attempt
 * has its own timeout, and one failed attempt is tried once more, with a fresh token.
 */
const crypto = require("crypto");

const ATTEMPT_TIMEOUT_MS = 7000; // two attempts and the pause stay well under 20 s
const RETRY_PAUSE_MS = 500;

function base64url(input) {
  return Buffer.from(input).toString("base64").replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

function signHS256(claims, secret) {
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = base64url(JSON.stringify(claims));
  const signature = crypto.createHmac("sha256", secret).update(`${header}.${payload}`).digest();
  return `${header}.${payload}.${base64url(signature)}`;
}

function token(body, secrets) {
  const now = Math.floor(Date.now() / 1000);
  return signHS256(
    {
      iss: `https://${secrets.AUTH0_DOMAIN}/`,
      aud: "resetrelay",
      iat: now,
      exp: now + 120,
      // A fresh jti per attempt: if the first attempt landed and only its answer was
      // lost, the second is a new notice, and voiding links twice changes nothing.
      jti: crypto.randomUUID(),
      body_sha256: crypto.createHash("sha256").update(body).digest("hex"),
    },
    secrets.RESETRELAY_ACTION_SECRET,
  );
}

async function attempt(url, body, secrets) {
  return fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token(body, secrets)}`, "content-type": "application/json" },
    body,
    signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
  });
}

// Worth a second attempt: no answer (network error, timeout), 429 or a 5xx. A 4xx
// says the request itself is wrong; sending it again cannot help.
function transient(response) {
  return response === null || response.status === 429 || response.status >= 500;
}

exports.onExecutePostChangePassword = async (event, api) => {
  const user = event.user || {};
  const body = JSON.stringify({
    type: "post_change_password",
    user: { user_id: user.user_id, email: user.email },
    connection: event.connection && event.connection.name,
  });
  const url = `${event.secrets.RESETRELAY_URL.replace(/\/$/, "")}/hooks/auth0/actions`;
  let response = null;
  let failure = null;
  for (let tries = 0; tries < 2; tries += 1) {
    if (tries > 0) await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
    try {
      response = await attempt(url, body, event.secrets);
      failure = null;
    } catch (err) {
      response = null;
      failure = err;
    }
    if (!transient(response)) break;
  }
  if (response === null) {
    throw new Error(`resetrelay unreachable: ${failure && failure.name}`);
  }
  if (!response.ok) {
    // Throwing marks the Action failed in Auth0's logs; the password change stands.
    throw new Error(`resetrelay answered ${response.status}`);
  }
};
