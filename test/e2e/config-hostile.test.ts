// Config files that would hurt the gateway later are refused at load, by `check` and `serve` alike, with exit
// code 2 and `file:line key.path: message`: a YAML alias bomb, control characters in keys or headers (written
// in the file, interpolated from .env, or read from an api_key_env_var), and credentials in a base_url.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type CliResult, runCli, tempDir, writeFiles } from "../helpers/cli-process.ts";

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Exit code 2, no stack trace, and the `file:line key.path: message` line matching `pattern`. */
function assertConfigError(result: CliResult, pattern: RegExp): void {
  assert.equal(result.code, 2, `exit code ${result.code}; stderr:\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /\n\s+at |node:internal|ReferenceError/, "a config error, not a crash");
  assert.match(result.stderr, pattern);
}

const PROVIDER = `providers:
  - name: alpha
    base_url: http://127.0.0.1:9/v1
`;

describe("hostile config files are refused with exit code 2", () => {
  test("a YAML alias bomb (billion laughs): `check` and `serve` stop at once with a clear message", async (t) => {
    const dir = tempDir(t);
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let level = 1; level < 9; level++) {
      const previous = String.fromCharCode(96 + level);
      const name = String.fromCharCode(97 + level);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(",")}]`);
    }
    const path = writeFiles(dir, { "bomb.yaml": `${PROVIDER}    api_key: k\nx-bomb:\n  ${levels.join("\n  ")}\n` });
    for (const args of [
      ["check", "--config", path],
      ["--config", path],
    ]) {
      const started = Date.now();
      const result = await runCli(args, { cwd: dir });
      assertConfigError(result, new RegExp(`^${escapeRegExp(path)}: too many YAML aliases`, "m"));
      // A CLI start on a loaded machine takes seconds; expanding the 9^9 aliases takes minutes (or the heap).
      assert.ok(Date.now() - started < 45_000, "refused before expanding the aliases");
    }
  });

  test("CR/LF in api_key (written in the file or interpolated from .env) is refused at its line; the key is not echoed", async (t) => {
    const dir = tempDir(t);
    const written = writeFiles(dir, {
      "written.yaml": `${PROVIDER}    api_key: "sk-secret-part\\r\\nX-Injected: 1"\n    models: { m: {} }\n`,
    });
    const writtenResult = await runCli(["check", "--config", written], { cwd: dir });
    assertConfigError(
      writtenResult,
      new RegExp(`^${escapeRegExp(written)}:4 providers\\.0\\.api_key: contains a control character`, "m"),
    );
    assert.doesNotMatch(writtenResult.stderr, /sk-secret-part/);

    const fromEnv = writeFiles(dir, {
      "from-env.yaml": `${PROVIDER}    api_key: \${ALPHA_KEY}\n    models: { m: {} }\n`,
      ".env": 'ALPHA_KEY="sk-dotenv-secret\\nX-Injected: 1"\n',
    });
    const envResult = await runCli(["--config", fromEnv], { cwd: dir });
    assertConfigError(
      envResult,
      new RegExp(`^${escapeRegExp(fromEnv)}:4 providers\\.0\\.api_key: contains a control character`, "m"),
    );
    assert.doesNotMatch(envResult.stderr, /sk-dotenv-secret/);
  });

  test("CR/LF in a key read through api_key_env_var is refused at that key's line", async (t) => {
    const dir = tempDir(t);
    const path = writeFiles(dir, {
      "gateway.yaml": `${PROVIDER}    api_key_env_var: [ALPHA_KEY, ALPHA_KEY_2]\n    models: { m: {} }\n`,
      ".env": 'ALPHA_KEY=sk-fine\nALPHA_KEY_2="sk-env-secret\\r\\n"\n',
    });
    const result = await runCli(["check", "--config", path], { cwd: dir });
    assertConfigError(
      result,
      new RegExp(
        `^${escapeRegExp(path)}:4 providers\\.0\\.api_key_env_var: environment variable ALPHA_KEY_2 contains a control character`,
        "m",
      ),
    );
    assert.doesNotMatch(result.stderr, /sk-env-secret/);
  });

  test("a header value with CR/LF, or a header name that is not a token, is refused at its line", async (t) => {
    const dir = tempDir(t);
    const path = writeFiles(dir, {
      "gateway.yaml": `${PROVIDER}    api_key: k
    headers:
      HTTP-Referer: "https://example.com\\r\\nX-Injected: 1"
      "Bad Name": x
      X-Title: fine
`,
    });
    const result = await runCli(["check", "--config", path], { cwd: dir });
    const at = escapeRegExp(path);
    assertConfigError(
      result,
      new RegExp(`^${at}:6 providers\\.0\\.headers\\.HTTP-Referer: contains a control character`, "m"),
    );
    assert.match(
      result.stderr,
      new RegExp(`^${at}:7 providers\\.0\\.headers\\.Bad Name: not a valid HTTP header name`, "m"),
    );
    assert.match(result.stderr, /2 problems/);
  });

  test("credentials in base_url are refused, not silently dropped; the password is not echoed", async (t) => {
    const dir = tempDir(t);
    const path = writeFiles(dir, {
      "gateway.yaml": `providers:
  - name: alpha
    base_url: https://user:hunter2-password@api.example.com/v1
    api_key: k
    models: { m: {} }
`,
    });
    for (const args of [
      ["check", "--config", path],
      ["--config", path],
    ]) {
      const result = await runCli(args, { cwd: dir });
      assertConfigError(
        result,
        new RegExp(
          `^${escapeRegExp(path)}:3 providers\\.0\\.base_url: credentials in the URL \\(user:pass@\\) are not supported`,
          "m",
        ),
      );
      assert.doesNotMatch(result.stderr, /hunter2/);
    }
  });
});
