// The house rules: which folder may import which. `npm run deps` checks the real code with these rules and
// test/unit/house-rules.test.ts checks that each rule fires on a fixture that breaks it. The picture behind
// them is docs/architecture.md; change the two together.
//
// Paths are relative to the directory being cruised (the repository root for `npm run deps`, the fixture
// folder for the test), so third-party packages are matched wherever their node_modules lies.

const NODE_MODULES = "(^|/)node_modules/";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "domain-imports-only-zod-and-decimal",
      severity: "error",
      comment:
        "functions/domain/ is the pure core: it imports its own files, zod and decimal.js, nothing else " +
        "(no AWS SDK, no node: built-ins, no adapters, no notify).",
      from: { path: "^functions/domain/" },
      to: { pathNot: ["^functions/domain/", `${NODE_MODULES}(zod|decimal\\.js)/`] },
    },
    {
      name: "notify-imports-only-domain",
      severity: "error",
      comment:
        "functions/notify/ is pure like the domain: it imports its own files, the domain, zod and decimal.js.",
      from: { path: "^functions/notify/" },
      to: {
        pathNot: ["^functions/notify/", "^functions/domain/", `${NODE_MODULES}(zod|decimal\\.js)/`],
      },
    },
    {
      name: "adapters-not-to-outer-code",
      severity: "error",
      comment:
        "functions/adapters/ sit between the handlers and the domain: they must not reach up into handlers, " +
        "the CLI, the local runtime or the infrastructure in lib/.",
      from: { path: "^functions/adapters/" },
      to: { path: "^(functions/(handlers|cli|local)|lib)/" },
    },
    {
      name: "handlers-not-to-local-cli-or-lib",
      severity: "error",
      comment:
        "functions/handlers/ are Lambda entry points: they use adapters, notify and the domain, never the local " +
        "runtime, the CLI or the CDK code in lib/.",
      from: { path: "^functions/handlers/" },
      to: { path: "^(functions/(local|cli)|lib)/" },
    },
    {
      name: "cli-not-to-handlers-local-or-lib",
      severity: "error",
      comment:
        "functions/cli/ is an operator's entry point beside the handlers: it may use adapters, notify and the " +
        "domain, not handlers, the local runtime or lib/.",
      from: { path: "^functions/cli/" },
      to: { path: "^(functions/(handlers|local)|lib)/" },
    },
    {
      name: "lib-not-to-runtime-code",
      severity: "error",
      comment:
        "lib/ describes the deployment (CDK): it may import the domain (and dependency-free modules), never a " +
        "handler, an adapter, the CLI or the local runtime. Handlers are bundled by entry path, not imported.",
      from: { path: "^lib/" },
      to: { path: "^functions/(handlers|adapters|cli|local)/" },
    },
    {
      name: "bench-through-domain-or-local-runtime",
      severity: "error",
      comment:
        "bench/ measures the domain and, through the local runtime (functions/local/, which loads the deployed " +
        "handlers by their entry path), the pipeline: it imports its own files, the domain, functions/local/, " +
        "built-ins and packages, never an adapter, a handler, notify, the CLI, lib/ or test/ directly.",
      from: { path: "^bench/" },
      to: { path: "^(functions/(adapters|handlers|notify|cli)|lib|test)/" },
    },
    {
      name: "production-not-to-test",
      severity: "error",
      comment: "Production code (functions/, lib/, bin/) never imports test support from test/.",
      from: { path: "^(functions|lib|bin)/" },
      to: { path: "^test/" },
    },
    {
      name: "no-circular",
      severity: "error",
      comment: "No cycles, type-only imports included: every import runs one way.",
      from: {},
      to: { circular: true },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      comment: "Every import resolves to a file or a package, so the rules above see every edge.",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // The fixtures break every rule on purpose; only test/unit/house-rules.test.ts cruises them.
    exclude: { path: "^test/fixtures/house-rules/" },
    // Count `import type` too: a type-only import is still a dependency between folders.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types", "typings"],
      extensions: [".ts", ".mts", ".cts", ".js", ".mjs", ".cjs", ".d.ts", ".json"],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
