/**
 * The worked example (examples/typescript) as its own npm project that installs this package from its
 * path: `npm ci` from its lock file, `tsc`, then the table session against a real sidecar in enforce
 * mode, and the package's `balance-replay` bin through `npx`.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { access } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { Sidecar } from "./support/sidecar.js";

const run = promisify(execFile);
const EXAMPLE = resolve(dirname(fileURLToPath(import.meta.url)), "../../../../examples/typescript");
let sidecar: Sidecar;

before(async () => {
  const installed = await access(join(EXAMPLE, "node_modules/@balance/client")).then(() => true, () => false);
  const [started] = await Promise.all([
    Sidecar.start(),
    (async () => {
      if (!installed) {
        await run("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: EXAMPLE });
      }
      await run("npm", ["run", "--silent", "build"], { cwd: EXAMPLE });
    })(),
  ]);
  sidecar = started;
  await sidecar.fixtures({ wallets: [{ user: "ex-alice", amount: 5_000n }, { user: "ex-bob", amount: 5_000n }] });
});

after(() => sidecar.dispose());

test("examples/typescript: a table session through the TableAdapter, every figure checked", async () => {
  const { stdout } = await run(process.execPath, ["dist/table_session.js"], {
    cwd: EXAMPLE,
    env: { ...process.env, BALANCE_GRPC_TARGET: sidecar.address, BALANCE_GRPC_TOKEN: sidecar.env.token,
           BALANCE_ROLLOUT: "enforce", PLAYERS: "ex-alice,ex-bob" },
  });
  assert.match(stdout, /ex-alice joined seat \d+ with 1000/);
  assert.match(stdout, /hand 1 settled: ex-alice 1190, ex-bob 800, rake 10/);
  assert.match(stdout, /ex-alice left: wallet 5190/);
  assert.match(stdout, /table session OK/);
});

test("npx balance-replay runs the installed package's bin", async () => {
  const { stdout } = await run("npx", ["--no-install", "balance-replay", "--help"], { cwd: EXAMPLE });
  assert.match(stdout, /usage: balance-replay LOG --target HOST:PORT/);
});
