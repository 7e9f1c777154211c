// Prints vitest's result as one plain line, "vitest: N passed, N failed[, N skipped]", which CI
// reads whatever the runner. Usage: node hack/test-summary.mjs <vitest json report>
import { readFileSync } from "node:fs";

const file = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(file, "utf8"));
} catch (error) {
  console.log(`vitest: no report at ${file} (${error.message})`);
  process.exit(0);
}
const failed = report.numFailedTests + (report.numRuntimeErrorTestSuites ?? 0);
const skipped = report.numPendingTests + report.numTodoTests;
console.log(
  `vitest: ${report.numPassedTests} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`,
);
