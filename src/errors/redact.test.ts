import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { threadCpuMs } from "../../test/helpers/thread-cpu.ts";
import { redactKeyShaped, redactSecrets } from "./redact.ts";

describe("redactSecrets", () => {
  test("configured secrets are replaced wherever they occur", () => {
    assert.equal(
      redactSecrets("key plainsecretvalue and again plainsecretvalue", ["plainsecretvalue"]),
      "key [redacted] and again [redacted]",
    );
  });

  test("key-shaped strings are replaced even when not configured", () => {
    const samples = [
      "sk-proj-Zx81Qw72Er63Ty54Ui45Op36",
      "sk-or-v1-0123456789abcdef0123456789abcdef",
      "gsk_0123456789abcdefABCDEF01",
      "hf_0123456789abcdefABCDEF01",
      "nvapi-0123456789abcdefABCDEF01",
      "AIzaSyA0123456789abcdefABCDEF0123456789",
      "ghp_0123456789abcdefABCDEF01",
      "csk-0123456789abcdefABCDEF01",
    ];
    for (const sample of samples) {
      const text = `Incorrect API key provided: ${sample}.`;
      assert.equal(redactSecrets(text, []), "Incorrect API key provided: [redacted].", sample);
    }
  });

  test("a bearer token keeps the word, loses the token", () => {
    assert.equal(redactKeyShaped("Authorization: Bearer abcDEF0123456789"), "Authorization: Bearer [redacted]");
    assert.equal(redactKeyShaped('"authorization":"bearer x.y.z-0123456789"'), '"authorization":"bearer [redacted]"');
    // In any case: the quick pre-check spells the word out case by case.
    assert.equal(redactKeyShaped("AUTHORIZATION: BEARER abcDEF0123456789"), "AUTHORIZATION: BEARER [redacted]");
    assert.equal(redactKeyShaped("x bEaReR abcDEF0123456789"), "x bEaReR [redacted]");
  });

  test("ordinary text, short tokens and model names are left alone", () => {
    for (const text of ["gpt-4o-mini", "sk-short", "the task-runner_v2 failed", "Bearer of bad news"]) {
      assert.equal(redactSecrets(text, ["abc"]), text);
    }
  });

  test("a configured secret cut where a text was shortened is redacted too (the cut ends the text)", () => {
    const key = "Zq7RkP2mWx9LtB4vNc8HjD3sFg6YaE1u";
    // cut one, several, most characters short; with the ellipsis a cut adds, and without
    for (const kept of [31, 20, 9]) {
      const cut = key.slice(0, kept);
      assert.equal(redactSecrets(`invalid key ${cut}…`, [key]), "invalid key [redacted]…", `${kept} kept`);
      assert.equal(redactSecrets(`invalid key ${cut}`, [key]), "invalid key [redacted]", `${kept} kept`);
    }
    // A few characters say nothing of a key and match ordinary words: left alone.
    assert.equal(redactSecrets(`ends with ${key.slice(0, 7)}…`, [key]), `ends with ${key.slice(0, 7)}…`);
    // The beginning of a secret anywhere but at the end is no cut: left alone.
    assert.equal(redactSecrets(`${key.slice(0, 12)} is not the key.`, [key]), `${key.slice(0, 12)} is not the key.`);
  });

  test("a key-shaped string a cut left too short for its shape is redacted when the text ends in the cut", () => {
    assert.equal(
      redactKeyShaped("Incorrect API key provided: sk-proj-abc…"),
      "Incorrect API key provided: [redacted]…",
    );
    assert.equal(redactKeyShaped("echo: Bearer abcdef…"), "echo: [redacted]…");
    // Not cut: a short token stays (as "sk-short" above).
    assert.equal(redactKeyShaped("Incorrect API key provided: sk-proj-abc"), "Incorrect API key provided: sk-proj-abc");
  });

  test("a key with characters encoders change is found in each form an echo gives it, in a short list and a long one", () => {
    const base64 = "Zq3+Lk8/Wm2xNp7+Rt5/Vb9yHc4=";
    const quoted = 'Qk7"Xw4\\Pz9-Lm2Vn8Tb';
    const forms = [
      // JSON once and twice (an error message that is a JSON body), and in a record's JSON again
      JSON.stringify(quoted).slice(1, -1),
      JSON.stringify(JSON.stringify(quoted).slice(1, -1)).slice(1, -1),
      JSON.stringify(JSON.stringify(JSON.stringify(quoted).slice(1, -1)).slice(1, -1)).slice(1, -1),
      // PHP's `\/`, once and twice
      base64.replaceAll("/", "\\/"),
      base64.replaceAll("/", "\\\\\\/"),
      // .NET's `\u002B` (upper-case hex) and `\u0022`; lower-case hex; twice escaped
      base64.replaceAll("+", "\\u002B"),
      base64.replaceAll("+", "\\u002b").replaceAll("=", "\\u003d"),
      base64.replaceAll("+", "\\\\u002B").replaceAll("/", "\\\\\\/"),
      quoted.replace('"', "\\u0022").replace("\\", "\\\\"),
      // a URL quoting it
      encodeURIComponent(base64),
      encodeURIComponent(base64).replace(/%[0-9A-F]{2}/g, (byte) => byte.toLowerCase()),
    ];
    const short = [base64, quoted];
    const long = [...short, ...Array.from({ length: 20 }, (_, index) => `team-key-${index}-${"q".repeat(12)}`)];
    for (const form of forms) {
      for (const list of [short, long]) {
        assert.equal(
          redactSecrets(`{"message":"Bearer ${form} was refused"}`, list),
          '{"message":"Bearer [redacted] was refused"}',
          form,
        );
      }
    }
    // Escapes that merely look alike are not the key.
    assert.equal(redactSecrets("Zq3+Lk8\\/Wm2 \\u002B", short), "Zq3+Lk8\\/Wm2 \\u002B");
  });

  test("a bearer token with `\\/` or `\\u` escapes is redacted whole; a backslash escaping a quote stays", () => {
    assert.equal(redactKeyShaped("Bearer AbCdEf\\/GhIj\\u002BKl=="), "Bearer [redacted]");
    assert.equal(redactKeyShaped('{"h":"Bearer AbCdEf\\\\\\/GhIj=="}'), '{"h":"Bearer [redacted]"}');
    // The token ends before the `\"` that ends its JSON string: the text stays JSON.
    const line = JSON.stringify({ message: JSON.stringify({ auth: "Bearer AbCdEfGh12345678" }) });
    assert.equal(JSON.parse(redactKeyShaped(line)).message, '{"auth":"Bearer [redacted]"}');
  });

  test("linear time on hostile input (no backtracking blow-up)", () => {
    // This thread's CPU time, not the clock: a loaded machine's other processes are not the code's cost.
    const hostile = `${"sk-".repeat(200_000)}${"Bearer ".repeat(100_000)}${"a-".repeat(200_000)}`;
    const { ms } = threadCpuMs(() => redactSecrets(hostile, ["sk-configured-key-0123456789"]));
    assert.ok(ms < 500, `took ${ms} ms of CPU`);
    // Long runs of backslashes after the beginning of a key whose escaped forms take runs of them (bounded runs).
    const runs = `${"Qk\\".repeat(1)}${"\\".repeat(5_000)}x`.repeat(200);
    const { ms: runsMs } = threadCpuMs(() => redactSecrets(runs, ['Qk\\"7Xw4Pz9-Lm2Vn8Tb']));
    assert.ok(runsMs < 500, `took ${runsMs} ms of CPU`);
  });

  test("a long list (every provider and client key, and their escaped forms) is redacted as one by one would", () => {
    const secrets = [
      ...Array.from({ length: 50 }, (_, index) => `team-key-${index}-${"q".repeat(12)}`),
      "prefix-secret",
      "prefix-secret-longer-one",
      'quote"in.key*(1)',
      "abc", // shorter than any configured secret is searched for: left alone, as with a short list
    ];
    const text = `a team-key-7-${"q".repeat(12)} and prefix-secret-longer-one, prefix-secret, 'quote"in.key*(1)' abc`;
    assert.equal(
      redactSecrets(text, secrets),
      "a [redacted] and [redacted], [redacted], '[redacted]' abc",
      "each secret whole, the longer of two that begin alike, special characters taken literally",
    );
    // The same list again (compiled once), and a text with none of them.
    assert.equal(redactSecrets("nothing here", secrets), "nothing here");
    assert.equal(redactSecrets(`x team-key-49-${"q".repeat(12)}`, secrets), "x [redacted]");
    // A cut one at the end of a text (a clipped upstream message), also in a long list.
    assert.equal(redactSecrets("invalid key team-key-3-qqqq…", secrets), "invalid key [redacted]…");
  });
});
