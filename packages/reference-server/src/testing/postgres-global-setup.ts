// Vitest global setup of the reference server's tests: gives the run a schema prefix (see
// postgres.ts) and drops the run's test schemas when it ends, whatever the tests left.
import { randomBytes } from "node:crypto";
import { dropSchemas, TEST_RUN_ENV } from "./postgres.js";

export default function setup(): () => Promise<void> {
  const run = randomBytes(4).toString("hex");
  process.env[TEST_RUN_ENV] = run;
  return async () => {
    await dropSchemas(`t_${run}_`);
  };
}
