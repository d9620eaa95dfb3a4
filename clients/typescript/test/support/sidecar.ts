/**
 * A real gRPC sidecar (`manage.py grpcserver`) for one test file, on a fresh SQLite database: a copy
 * of the template database that test/run.ts migrated once (with its API keys), so each file starts
 * from the same empty books without paying for a migration. It can be stopped, restarted on the same
 * port, paused (SIGSTOP: a hung server) and resumed.
 */
import { spawn, execFile } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
// This file runs as build/test/support/sidecar.js; the fixtures script stays in test/support/.
const FIXTURES_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../test/support/fixtures.py");

export interface TestEnvironment {
  repo: string;
  python: string;
  template: string;
  /** accounts:read, reservations:write, tables:write: the poker service's scopes. */
  token: string;
  /** accounts:read only. */
  readToken: string;
  /** Every scope: the fixtures' cashier calls. */
  setupToken: string;
}

export function testEnvironment(): TestEnvironment {
  const need = (name: string): string => {
    const value = process.env[name];
    if (!value) {
      throw new Error(`${name} is not set: run the tests with \`npm test\` (test/run.ts prepares them)`);
    }
    return value;
  };
  return {
    repo: need("BALANCE_REPO"), python: need("BALANCE_PYTHON"), template: need("BALANCE_TEST_TEMPLATE"),
    token: need("BALANCE_TEST_TOKEN"), readToken: need("BALANCE_TEST_READ_TOKEN"),
    setupToken: need("BALANCE_TEST_SETUP_TOKEN"),
  };
}

/** The environment of every Python process: the embedded default on `varDir`, whatever the caller's. */
export function pythonEnv(varDir: string): NodeJS.ProcessEnv {
  // MAX_AMOUNT at int64: the tests carry amounts above 2^53, past the operator's default cap (10^15).
  const env: NodeJS.ProcessEnv = { ...process.env, BALANCE_VAR_DIR: varDir, MAX_AMOUNT: "9223372036854775807" };
  delete env["DATABASE_URL"];
  delete env["REDIS_URL"];
  delete env["CELERY_BROKER_URL"];
  return env;
}

export interface WalletSpec {
  user: string;
  amount?: bigint;
  currency?: string;
}

const LISTENING = /^gRPC server listening on (\S+)$/m;

export class Sidecar {
  readonly env: TestEnvironment;
  readonly varDir: string;
  address = "";
  private process: ChildProcess | undefined;
  private stderr = "";

  private constructor(env: TestEnvironment, varDir: string) {
    this.env = env;
    this.varDir = varDir;
  }

  static async start(): Promise<Sidecar> {
    const env = testEnvironment();
    const varDir = await mkdtemp(join(tmpdir(), "balance-ts-"));
    await cp(env.template, varDir, { recursive: true });
    const sidecar = new Sidecar(env, varDir);
    await sidecar.launch("127.0.0.1:0");
    return sidecar;
  }

  get port(): number {
    return Number(this.address.split(":").pop());
  }

  get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Opens wallets (funded through the HTTP API's deposit), freezes or closes some; returns account ids. */
  async fixtures(spec: { wallets: WalletSpec[]; freeze?: string[]; close?: string[] }): Promise<Record<string, bigint>> {
    const json = JSON.stringify({
      token: this.env.setupToken, freeze: spec.freeze ?? [], close: spec.close ?? [],
      wallets: spec.wallets.map((w) => ({ user: w.user, currency: w.currency ?? "EUR", amount: String(w.amount ?? 0n) })),
    });
    const { stdout } = await run(this.env.python, [
      "manage.py", "shell", "-v", "0", "-c", `exec(open(${JSON.stringify(FIXTURES_SCRIPT)}).read())`,
    ], { cwd: this.env.repo, env: { ...pythonEnv(this.varDir), BALANCE_FIXTURES: json } });
    const accounts = (JSON.parse(stdout) as { accounts: Record<string, number> }).accounts;
    return Object.fromEntries(Object.entries(accounts).map(([user, id]) => [user, BigInt(id)]));
  }

  /** SIGTERM (drains calls in flight) or SIGKILL (a crash); resolves once the process is gone. */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const child = this.process;
    if (child === undefined || !this.running) {
      return;
    }
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGCONT");
    child.kill(signal);
    await exited;
    this.process = undefined;
  }

  /** Starts it again on the same port, as a supervisor would after a crash or a deploy. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch(this.address);
  }

  /** SIGSTOP: connections stay open and calls hang, as with a stalled server. */
  pause(): void {
    this.process?.kill("SIGSTOP");
  }

  resume(): void {
    this.process?.kill("SIGCONT");
  }

  async dispose(): Promise<void> {
    await this.stop();
    if (/Traceback|ERROR/.test(this.stderr)) {
      // A server-side failure explains a client-side one: show it with the test's output.
      console.error(`sidecar log (tail):\n${this.stderr.split("\n").slice(-40).join("\n")}`);
    }
    await rm(this.varDir, { recursive: true, force: true });
  }

  private async launch(bind: string): Promise<void> {
    const child = spawn(this.env.python, [
      "manage.py", "grpcserver", "--bind", bind, "--metrics-port", "0", "--max-workers", "4", "--grace", "2",
    ], { cwd: this.env.repo, env: pythonEnv(this.varDir), stdio: ["ignore", "pipe", "pipe"] });
    this.process = child;
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-20_000);
    });
    let stdout = "";
    this.address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the sidecar did not start in 30 s:\n${this.stderr}`)), 30_000);
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        stdout += chunk;
        const match = LISTENING.exec(stdout);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the sidecar exited (${code ?? signal}) before listening:\n${this.stderr}`));
      });
    });
  }
}
