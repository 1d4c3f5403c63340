import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import {
  DYNAMODB_LOCAL_DISTRIBUTION,
  DynamoDbLocalSetupError,
  installDynamoDbLocal,
} from "../../functions/local/dynamodb-local.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const FIXTURE = join(ROOT, "test", "fixtures", "hold-dynamodb-local.ts");
const temporary: string[] = [];
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntilGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((wait) => setTimeout(wait, 100));
  }
  return !isAlive(pid);
}

/** Starts a Node process that owns a DynamoDB Local, and returns both pids once the JVM answers. */
async function startOwner(): Promise<{ owner: ChildProcess; jvmPid: number; endpoint: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DYNAMODB_ENDPOINT;
  const owner = spawn(process.execPath, ["--import", "tsx", FIXTURE], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(owner);
  const line = await new Promise<string>((resolveLine, reject) => {
    let buffer = "";
    owner.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const newline = buffer.indexOf("\n");
      if (newline >= 0) resolveLine(buffer.slice(0, newline));
    });
    owner.once("exit", (code) =>
      reject(new Error(`fixture exited with ${code} before it started DynamoDB Local`)),
    );
  });
  const { pid, endpoint } = JSON.parse(line) as { pid: number; endpoint: string };
  return { owner, jvmPid: pid, endpoint };
}

/** A PATH with node, npm and sh but no java, as on a machine where Java was never installed. */
function pathWithoutJava(): string {
  const dir = mkdtempSync(join(tmpdir(), "margin-call-nojava-"));
  temporary.push(dir);
  const npmOnPath = spawnSync("sh", ["-c", "command -v npm"], { encoding: "utf8" }).stdout.trim();
  expect(npmOnPath, "npm must be on the PATH of the test run").not.toBe("");
  symlinkSync(process.execPath, join(dir, "node"));
  symlinkSync("/bin/sh", join(dir, "sh"));
  symlinkSync(realpathSync(npmOnPath), join(dir, "npm"));
  return dir;
}

function withoutJavaEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: pathWithoutJava() };
  delete env.DYNAMODB_ENDPOINT;
  return env;
}

describe("DynamoDB Local lifecycle", () => {
  it.each(["SIGTERM", "SIGINT"] as const)("leaves no JVM behind when its owner gets %s", async (signal) => {
    const { owner, jvmPid, endpoint } = await startOwner();
    expect(isAlive(jvmPid)).toBe(true);
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    owner.kill(signal);

    expect(await waitUntilGone(jvmPid, 10_000)).toBe(true);
  });

  it.skipIf(process.platform !== "linux")("leaves no JVM behind when its owner is SIGKILLed", async () => {
    const { owner, jvmPid } = await startOwner();
    owner.kill("SIGKILL");
    expect(await waitUntilGone(jvmPid, 10_000)).toBe(true);
  });

  it("refuses a tarball whose sha512 does not match the pin, and installs nothing", async () => {
    const cache = mkdtempSync(join(tmpdir(), "margin-call-cache-"));
    temporary.push(cache);
    const previous = process.env.MARGIN_CALL_CACHE_DIR;
    process.env.MARGIN_CALL_CACHE_DIR = cache;
    try {
      const forged = { ...DYNAMODB_LOCAL_DISTRIBUTION, integrity: `sha512-${"A".repeat(86)}==` };
      await expect(installDynamoDbLocal(() => {}, forged)).rejects.toThrow(DynamoDbLocalSetupError);
      await expect(installDynamoDbLocal(() => {}, forged)).rejects.toThrow(/Integrity check failed/);
      expect(readdirSync(cache)).toEqual([]);
    } finally {
      if (previous === undefined) delete process.env.MARGIN_CALL_CACHE_DIR;
      else process.env.MARGIN_CALL_CACHE_DIR = previous;
    }
  });
});

describe("without java on the PATH", () => {
  const expectClearMessage = (output: string): void => {
    expect(output).toContain("DynamoDB Local needs Java 17 or newer, and there is no `java` on the PATH.");
    expect(output).toContain("apt-get install openjdk-17-jre-headless");
    expect(output).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  };

  it("npm start fails with the clear message, not a stack trace", () => {
    const result = spawnSync("npm", ["start"], {
      cwd: ROOT,
      env: withoutJavaEnv(),
      encoding: "utf8",
      timeout: 120_000,
    });
    expect(result.status).toBe(1);
    expectClearMessage(result.stderr);
  });

  it("the DynamoDB Local tests fail with the clear message, not a stack trace", () => {
    const vitest = join(ROOT, "node_modules", "vitest", "vitest.mjs");
    const result = spawnSync(
      process.execPath,
      [vitest, "run", "--project", "integration", "test/integration/table-streams.test.ts"],
      {
        cwd: ROOT,
        env: { ...withoutJavaEnv(), CI: "true", NO_COLOR: "1" },
        encoding: "utf8",
        timeout: 120_000,
      },
    );
    expect(result.status).not.toBe(0);
    expectClearMessage(`${result.stdout}${result.stderr}`);
  });
});
