/**
 * `npm test`: migrates a template SQLite database once (in a temporary directory), creates the API
 * keys the tests use, then runs every `*.test.js` with node's test runner. Each test file copies the
 * template and starts its own sidecar on it (test/support/sidecar.ts). The Python side is this
 * repository (../..) with its .venv unless BALANCE_REPO / BALANCE_PYTHON point elsewhere.
 * Arguments: a word picks the test files whose name contains it (`npm test -- rpc replay`); an option
 * goes to `node --test` (`npm test -- --test-name-pattern=restart`).
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { pythonEnv } from "./support/sidecar.js";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(process.env["BALANCE_REPO"] ?? join(here, "../../../.."));
const python = process.env["BALANCE_PYTHON"] ?? join(repo, ".venv/bin/python");

async function createKey(env: NodeJS.ProcessEnv, client: string, scopes: string[] | "all"): Promise<string> {
  const args = ["manage.py", "create_api_key", "--client", client,
                ...(scopes === "all" ? ["--all-scopes"] : ["--scopes", scopes.join(",")])];
  const { stdout } = await run(python, args, { cwd: repo, env });
  return stdout.trim().split("\n").pop() ?? "";
}

async function main(): Promise<number> {
  const template = await mkdtemp(join(tmpdir(), "balance-ts-template-"));
  try {
    const env = pythonEnv(template);
    const started = performance.now();
    await run(python, ["manage.py", "migrate", "--noinput", "-v", "0"], { cwd: repo, env });
    const [token, readToken, setupToken] = await Promise.all([
      createKey(env, "poker-service", ["accounts:read", "reservations:write", "tables:write"]),
      createKey(env, "ts-reader", ["accounts:read"]),
      createKey(env, "ts-setup", "all"),
    ]);
    console.log(`template database ready in ${Math.round(performance.now() - started)} ms (${template})`);

    const args = process.argv.slice(2);
    const words = args.filter((arg) => !arg.startsWith("-"));
    const files = (await readdir(here)).filter((name) => name.endsWith(".test.js"))
      .filter((name) => words.length === 0 || words.some((word) => name.includes(word))).sort().map((name) => join(here, name));
    const options = args.filter((arg) => arg.startsWith("-"));
    const child = spawn(process.execPath, ["--test", "--test-concurrency=2", ...options, ...files], {
      stdio: "inherit",
      env: {
        ...process.env, BALANCE_REPO: repo, BALANCE_PYTHON: python, BALANCE_TEST_TEMPLATE: template,
        BALANCE_TEST_TOKEN: token, BALANCE_TEST_READ_TOKEN: readToken, BALANCE_TEST_SETUP_TOKEN: setupToken,
      },
    });
    return await new Promise<number>((done) => child.on("exit", (code, signal) => done(code ?? (signal ? 1 : 0))));
  } finally {
    await rm(template, { recursive: true, force: true });
  }
}

process.exitCode = await main();
