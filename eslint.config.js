import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["*.js", "hack/*.mjs"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/restrict-template-expressions": [
        "error",
        { allowNumber: true, allowBoolean: true },
      ],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-confusing-void-expression": ["error", { ignoreArrowShorthand: true }],
      // @kubernetes/client-node declares its API models as classes that are plain data shapes; object
      // literals are the documented way to build them.
      "@typescript-eslint/no-unsafe-class-instance-assignment": "off",
      eqeqeq: ["error", "always"],
    },
  },
  {
    // What a ponger or pinger pod loads. An ES import of a built-in builds its namespace from every
    // export, evaluating what Node otherwise loads only when touched: node:tls parses the root CA
    // store, node:http loads http2 and Node's bundled undici, node:process and node:fs dozens of
    // modules more. process.getBuiltinModule returns the module object and leaves them alone: 3.5 MiB
    // of a workload's idle RSS (`npm run bench -- workloads`). Type imports cost nothing.
    files: [
      "cli.ts",
      "entrypoint.ts",
      "lib/exit.ts",
      "workloads/**/*.ts",
      "lib/line-logger.ts",
      "lib/http1.ts",
      "lib/probe-routes.ts",
      "lib/time.ts",
      "lib/http-server.ts",
      "lib/pem.ts",
      "lib/duration.ts",
      "lib/shutdown.ts",
    ],
    ignores: ["**/*.test.ts", "workloads/testing/**", "workloads/local-demo.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["node:*"],
              allowTypeImports: true,
              message:
                "Workloads load built-ins with process.getBuiltinModule (see eslint.config.js): an ES import evaluates every export.",
            },
          ],
        },
      ],
      // The first Date formatting pages in ~0.8 MiB of the node binary: lib/time.ts formats instead.
      "no-restricted-syntax": [
        "error",
        {
          selector: "NewExpression[callee.name='Date']",
          message: "Use lib/time.ts with Date.now() (see there).",
        },
      ],
    },
  },
  {
    files: ["*.js", "hack/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { console: "readonly", process: "readonly" } },
  },
);
