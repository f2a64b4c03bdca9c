/**
 * Tiny assertions for the nft unit tests (JSR @std/assert is unreachable here).
 * @module
 */

/** Throws when the two values differ (compared as JSON), showing both. */
export function assertEquals(actual: unknown, expected: unknown, what = "value"): void {
  const a = JSON.stringify(actual, null, 2), e = JSON.stringify(expected, null, 2);
  if (a !== e) {
    throw new Error(`${what} differs.\n--- expected\n${e}\n--- actual\n${a}`);
  }
}

/** Throws when the condition is false. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Throws unless the promise rejects with an error whose message matches. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  pattern: RegExp,
  what = "call",
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    const err = e as Error;
    if (!pattern.test(err.message)) {
      throw new Error(`${what} rejected with "${err.message}", expected ${pattern}`);
    }
    return err;
  }
  throw new Error(`${what} resolved, expected a rejection matching ${pattern}`);
}

/** Line-by-line comparison of two texts with the first difference shown. */
export function assertText(actual: string, expected: string, what = "text"): void {
  if (actual === expected) return;
  const a = actual.split("\n"), e = expected.split("\n");
  const n = Math.max(a.length, e.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== e[i]) {
      throw new Error(
        `${what} differs at line ${i + 1}:\n  expected: ${JSON.stringify(e[i])}\n  actual:   ${
          JSON.stringify(a[i])
        }\n--- actual text\n${actual}`,
      );
    }
  }
}
