// The dashboard in a real browser (Debian's chromium driven by playwright-core): two mock providers, a 429 on the
// preferred one, and the page must show the cooldown with its countdown, the request in the live feed and its
// route, without a reload. Saves a screenshot under test-output/ (look at it). Skips when chromium is missing
// (.ci/run installs it).
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { chromium } from "playwright-core";
import { REPO_ROOT } from "../helpers/cli-process.ts";
import { postChat, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, rateLimited } from "../helpers/mock-upstream.ts";

const CHROMIUM = "/usr/bin/chromium";
const SKIP = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is not installed (apt-get install -y chromium); skipping the dashboard browser test`;
const CHAT = "POST /v1/chat/completions";
const KEY = "dashboard-client-key";
export const TEST_OUTPUT = join(REPO_ROOT, "test-output");

describe("dashboard in a browser", { skip: SKIP }, () => {
  test("shows both providers, a 429's cooldown and countdown within 2 s, the request and its route", async (t) => {
    const alpha = await useMock(t);
    const beta = await useMock(t);
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys: [{ key: ${KEY}, name: team-a, limits: { rpd: 1000 } }]
providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha-secret
    retries: 0
    models:
      m: { id: alpha-large, priority: 10, limits: { rpd: 1000 } }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-beta-secret
    retries: 0
    limits: { rpm: 30 }
    models:
      m: { id: beta-small, priority: 1 }
meta_models:
  best: [m]
routing:
  max_wait_for_better_ms: 0
`,
    );
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
    t.after(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    await page.goto(`${gateway.url}/dashboard#key=${KEY}`);
    // The key left the address bar (kept in the tab's sessionStorage only).
    assert.equal(new URL(page.url()).hash, "");

    const alphaRow = page.locator('tr[data-deployment="alpha/m"]');
    const betaRow = page.locator('tr[data-deployment="beta/m"]');
    await alphaRow.waitFor({ timeout: 5_000 });
    await betaRow.waitFor({ timeout: 5_000 });
    assert.equal(await alphaRow.locator("[data-status]").getAttribute("data-status"), "ok");
    assert.match(await visibleText(alphaRow), /1000 \/ 1000 requests per day/);

    alpha.enqueue(CHAT, rateLimited({ retryAfter: "120" }));
    beta.enqueue(CHAT, { kind: "json", body: chatCompletion("hello from beta", "beta-small") });
    const answered = await postChat(gateway, { model: "m" }, { authorization: `Bearer ${KEY}` });
    assert.equal(answered.status, 200, answered.text);
    const requestId = answered.headers["x-request-id"] ?? "";
    const sentAtMs = Date.now();

    // Live, without a reload: the cooldown, its cause and a countdown near 2 minutes.
    await alphaRow.locator('[data-status="cooling"]').waitFor({ timeout: 2_000 });
    const alphaText = await visibleText(alphaRow);
    assert.match(alphaText, /rate_limited/);
    assert.match(alphaText, /for (1m 5\d|2m 00)s/);
    assert.ok(Date.now() - sentAtMs < 2_500);
    assert.equal(await betaRow.locator("[data-status]").getAttribute("data-status"), "ok");

    const feedRow = page.locator(`[data-request-id="${requestId}"]`);
    await feedRow.waitFor({ timeout: 2_000 });
    assert.match(await visibleText(feedRow), /m → beta\/beta-small/);
    // The key is named: the feed and the route say whose request it was.
    assert.match(await visibleText(feedRow), / · team-a · /);
    // Its client budget: one of 1000 requests a day spent.
    const clientRow = page.locator('tr[data-client="team-a"]');
    await clientRow.waitFor({ timeout: 2_000 });
    assert.match(
      await visibleText(clientRow),
      /team-a ok 0 in flight 999 \/ 1000 requests per day \(client, fixed\) · resets in /,
    );

    // Keyboard: focus the row and press Enter to open its route.
    await feedRow.focus();
    await page.keyboard.press("Enter");
    const dialog = page.locator("#route-dialog");
    await dialog.locator("table").first().waitFor({ timeout: 2_000 });
    const route = await visibleText(dialog);
    assert.match(route, /alpha alpha-large primary 429 rate_limited/);
    assert.match(route, /beta beta-small primary 200 success/);
    assert.match(route, /client team-a/);
    assert.doesNotMatch(route, /null|undefined/);

    mkdirSync(TEST_OUTPUT, { recursive: true });
    await page.screenshot({ path: join(TEST_OUTPUT, "dashboard-route.png"), fullPage: true });
    await page.keyboard.press("Escape");
    await page.waitForTimeout(100);
    assert.equal(await dialog.getAttribute("open"), null, "Escape closes the route dialog");
    await page.screenshot({ path: join(TEST_OUTPUT, "dashboard.png"), fullPage: true });
    assert.deepEqual(pageErrors, []);

    // On a phone: one column, nothing wider than the screen (wide tables scroll inside their panel).
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(1_200);
    const widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]");
    assert.ok(Array.isArray(widths) && widths[0] <= widths[1], `page wider than a phone: ${String(widths)}`);
    await page.screenshot({ path: join(TEST_OUTPUT, "dashboard-phone.png"), fullPage: true });
  });

  test("a refused key, a recent failure and a used-up budget show as `key invalid`, `suspect` and `over budget`", async (t) => {
    const alpha = await useMock(t);
    const gamma = await useMock(t);
    const beta = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha-secret
    retries: 0
    models:
      m: { priority: 10 }
  - name: gamma
    base_url: ${gamma.baseUrl}
    api_key: sk-gamma-secret
    retries: 0
    models:
      m: { priority: 5 }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-beta-secret
    retries: 0
    limits: { rpd: 1 }
    models:
      m: { priority: 1 }
routing:
  max_wait_for_better_ms: 0
`,
    );
    alpha.enqueue(CHAT, { kind: "json", status: 401, body: { error: { message: "Invalid API key" } } });
    gamma.enqueue(CHAT, { kind: "json", status: 503, body: { error: { message: "overloaded" } } });
    beta.enqueue(CHAT, { kind: "json", body: chatCompletion("ok", "m") });
    assert.equal((await postChat(gateway, { model: "m" })).status, 200);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu"],
    });
    t.after(() => browser.close());
    const page = await browser.newPage();
    await page.goto(`${gateway.url}/dashboard`);
    await page.locator('tr[data-deployment="alpha/m"] [data-status="key invalid"]').waitFor({ timeout: 3_000 });
    await page.locator('tr[data-deployment="gamma/m"] [data-status="suspect"]').waitFor({ timeout: 3_000 });
    await page.locator('tr[data-deployment="beta/m"] [data-status="over budget"]').waitFor({ timeout: 3_000 });
    assert.match(await visibleText(page.locator('tr[data-deployment="beta/m"]')), /0 \/ 1 requests per day/);
  });

  test("a key with a literal `%` in #key= is used as typed (it does not decode) and leaves the address bar", async (t) => {
    const percentKey = "ck%zz-1";
    const alpha = await useMock(t);
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys: ["${percentKey}"]
providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha-secret
    models:
      m: {}
`,
    );
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu"],
    });
    t.after(() => browser.close());
    // As pasted (`%zz` is no escape) and as encoded: both reach the data.
    for (const fragment of [percentKey, encodeURIComponent(percentKey)]) {
      const page = await browser.newPage();
      const pageErrors: string[] = [];
      page.on("pageerror", (error) => pageErrors.push(error.message));
      await page.goto(`${gateway.url}/dashboard#key=${fragment}`);
      await page.locator('tr[data-deployment="alpha/m"]').waitFor({ timeout: 3_000 });
      assert.equal(new URL(page.url()).hash, "", fragment);
      assert.equal(await page.locator("#login").isVisible(), false, fragment);
      assert.deepEqual(pageErrors, [], fragment);
      await page.close();
    }
  });

  test("without a key the page asks for one instead of showing data", async (t) => {
    const alpha = await useMock(t);
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
    models:
      m: {}
`,
    );
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu"],
    });
    t.after(() => browser.close());
    const page = await browser.newPage();
    await page.goto(`${gateway.url}/dashboard`);
    await page.locator("#login").waitFor({ state: "visible", timeout: 3_000 });
    assert.equal(await page.locator("tr[data-deployment]").count(), 0);
    await page.fill("#key-input", KEY);
    await page.press("#key-input", "Enter");
    await page.locator('tr[data-deployment="alpha/m"]').waitFor({ timeout: 3_000 });
  });
});

/** The text as the browser lays it out (table cells apart), whitespace collapsed. */
async function visibleText(locator: import("playwright-core").Locator): Promise<string> {
  return (await locator.allInnerTexts()).join(" ").replace(/\s+/g, " ");
}
