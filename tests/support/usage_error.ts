/**
 * The flag parser's verdict on a command line, for table-driven flag tests.
 * @module
 */

import { parseArgs, UsageError } from "../../src/config/flags.ts";

/** The host facts flag tests run with. */
export const TEST_HOST = { hostname: "node-a" };

/** The UsageError message of a command line, or "(no error)". */
export function usageError(argv: string[]): string {
  try {
    parseArgs(argv, TEST_HOST);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    return e.message;
  }
  return "(no error)";
}
