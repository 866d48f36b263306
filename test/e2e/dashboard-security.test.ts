// The dashboard shows text chosen by clients (the model asked for) and upstreams (model ids from discovery, error
// messages in attempt reasons and cooldowns). In a real browser (Debian's chromium driven by playwright-core): that
// text must show as text and never run script, the page's headers must keep an injected inline handler from
// running even if a rendering mistake let one in, and another site must not be able to frame the page.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, test } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, chatStream } from "../helpers/mock-upstream.ts";

const CHROMIUM = "/usr/bin/chromium";
const SKIP = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is not installed (apt-get install -y chromium); skipping the dashboard browser test`;
const CHAT = "POST /v1/chat/completions";
const KEY = "dashboard-security-key";

/** Each payload sets `window.__xss` to where it came from, if it ever runs. */
const MODEL_ID = `<img src=x onerror="window.__xss='model id'">`;
const ASKED = `<svg onload="window.__xss='model asked'"></svg>`;
const REASON = `<img src=x onerror="window.__xss='attempt reason'"><script>window.__xss='script'</script>`;

async function launch(t: import("node:test").TestContext): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
  t.after(() => browser.close());
  return browser;
}

async function injected(page: Page): Promise<unknown> {
  return page.evaluate("window.__xss");
}

describe("dashboard security in a browser", { skip: SKIP }, () => {
  test("model ids, asked names and upstream error texts show as text and never run script", async (t) => {
    const alpha = await useMock(t, { models: [{ id: MODEL_ID }] });
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${KEY}]
providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha-secret
    retries: 0
routing:
  max_wait_for_better_ms: 0
`,
    );
    const auth = { authorization: `Bearer ${KEY}` };
    const models = await send(gateway, "GET", "/v1/models", { headers: auth });
    const publicName = (models.json as { data: { id: string }[] }).data[0]?.id ?? "";
    assert.ok(publicName !== "", models.text);
    // An upstream's error text with markup: the attempt's reason and the deployment's cooldown reason.
    alpha.enqueue(CHAT, { kind: "json", status: 503, body: { error: { message: REASON } } });
    const failed = await postChat(gateway, { model: publicName }, auth);
    assert.equal(failed.status, 502, failed.text);
    alpha.enqueue(CHAT, { kind: "json", body: chatCompletion("fine", MODEL_ID) });
    // A model name with markup asked for by a client: a refusal, shown in the feed.
    const refused = await postChat(gateway, { model: ASKED }, auth);
    assert.equal(refused.status, 404, refused.text);

    const browser = await launch(t);
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    await page.goto(`${gateway.url}/dashboard#key=${KEY}`);
    const row = page.locator("tr[data-deployment]").first();
    await row.waitFor({ timeout: 5_000 });
    // The model id shows as text in the deployments table, the reason in its status cell.
    await page.getByText(MODEL_ID, { exact: false }).first().waitFor({ timeout: 3_000 });
    assert.match((await row.textContent()) ?? "", /<img src=x onerror=/);
    // The asked name in the feed; then the failed request's route, with the upstream's text as a reason.
    await page.getByText(ASKED, { exact: false }).first().waitFor({ timeout: 3_000 });
    const failedRow = page.locator(`[data-request-id="${failed.headers["x-request-id"]}"]`);
    await failedRow.click();
    const dialog = page.locator("#route-dialog");
    await dialog.locator("table").first().waitFor({ timeout: 3_000 });
    await dialog.getByText("window.__xss='attempt reason'", { exact: false }).first().waitFor({ timeout: 3_000 });
    await page.waitForTimeout(300);

    assert.equal(await injected(page), undefined, "a payload ran in the admin's browser");
    assert.equal(await page.locator("img").count(), 0, "markup from a record became an element");
    assert.equal(await page.locator("#feed svg, #deployments svg, #route-dialog svg").count(), 0);
    assert.deepEqual(pageErrors, []);
    // The page's own script runs under the policy (the data above is its work) and breaks none of it.
    assert.deepEqual(violations, []);
    // The dialog's method="dialog" form still closes it under `form-action 'none'`.
    await dialog.getByRole("button", { name: "Close" }).click();
    await page.waitForTimeout(100);
    assert.equal(await dialog.getAttribute("open"), null);
  });

  test("an inline handler that a rendering mistake let in does not run (CSP without 'unsafe-inline')", async (t) => {
    const alpha = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha-secret
    models:
      m: {}
`,
    );
    const browser = await launch(t);
    const page = await browser.newPage();
    await page.goto(`${gateway.url}/dashboard`);
    await page.locator('tr[data-deployment="alpha/m"]').waitFor({ timeout: 5_000 });
    // What a future `innerHTML` of a record's text would do: refused outright where the browser has Trusted Types;
    // where the markup does get in (a browser without them, simulated with a policy that passes it on), its inline
    // handlers must still not run: only the page's own script, by its hash, may.
    const refusal = await page.evaluate(
      `(() => { try { document.getElementById("feed").innerHTML = ${JSON.stringify(`<li>${REASON}</li>`)}; return "assigned"; } catch (error) { return String(error); } })()`,
    );
    assert.match(String(refusal), /TrustedHTML/, "innerHTML took a string");
    await page.evaluate(`(() => {
      const policy = trustedTypes.createPolicy("simulated-mistake", { createHTML: (text) => text });
      // Its own element: the feed is redrawn every second.
      const holder = document.createElement("div");
      holder.id = "mistake";
      document.body.append(holder);
      holder.innerHTML = policy.createHTML(${JSON.stringify(`<li>${REASON}</li>`)});
    })()`);
    await page.waitForTimeout(300);
    assert.equal(await page.locator("#mistake img").count(), 1, "the simulated mistake did put the markup in the page");
    assert.equal(await injected(page), undefined, "an injected inline handler ran");
  });

  test("another site cannot frame the dashboard (clickjacking), and the page sends no Referer", async (t) => {
    const alpha = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha-secret
    models:
      m: {}
`,
    );
    const head = await send(gateway, "GET", "/dashboard");
    assert.equal(head.status, 200);
    assert.equal(head.headers["x-frame-options"], "DENY");
    assert.equal(head.headers["referrer-policy"], "no-referrer");
    assert.equal(head.headers["x-content-type-options"], "nosniff");
    const csp = head.headers["content-security-policy"] ?? "";
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/]+={0,2}'(;|$)/);
    assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/);
    // Every answer says its type is its type: JSON, an error, and a stream written after the head was hijacked.
    alpha.enqueue(CHAT, { kind: "sse", events: chatStream(["hi"], "m") });
    for (const answer of [
      await send(gateway, "GET", "/v1/models"),
      await send(gateway, "GET", "/nowhere"),
      await postChat(gateway, { model: "m", stream: true }),
    ]) {
      assert.equal(answer.headers["x-content-type-options"], "nosniff", answer.text);
    }

    const browser = await launch(t);
    const page = await browser.newPage();
    const refusals: string[] = [];
    page.on("console", (message) => refusals.push(message.text()));
    await page.setContent(`<iframe src="${gateway.url}/dashboard" width="800" height="600"></iframe>`, {
      waitUntil: "domcontentloaded",
    });
    await page.waitForTimeout(1_500);
    const framed = page.frames().find((frame) => frame !== page.mainFrame());
    const framedUrl = framed?.url();
    // Closed here: with a blocked frame in it, playwright's browser.close() does not return.
    await page.close();
    // Blocked: the frame holds the browser's error page, never the dashboard.
    assert.ok(framedUrl !== undefined && !framedUrl.endsWith("/dashboard"), `framed: ${framedUrl}`);
    assert.ok(
      refusals.some((text) => text.includes("frame-ancestors 'none'")),
      refusals.join("\n"),
    );
  });
});
