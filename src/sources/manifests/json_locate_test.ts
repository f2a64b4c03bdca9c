import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { locateJsonError } from "./json_locate.ts";

Deno.test("locateJsonError: valid JSON has no error", () => {
  for (
    const text of [
      "{}",
      ' [1, -2.5e3, true, false, null, "a\\u00e9\\n"] ',
      '{"a": {"b": [{}]}}',
      "0",
    ]
  ) {
    assertEquals(locateJsonError(text), null, text);
    JSON.parse(text); // the two agree
  }
});

Deno.test("locateJsonError: line, column and message of the first error", async (t) => {
  const cases: [string, string][] = [
    ['{\n  "a": 1,\n}', '3:1 expected a property name in double quotes, found "}"'],
    ['{\n  "a": 1\n  "b": 2\n}', '3:3 expected "," or "}", found "\\""'],
    ["[1, 2", '1:6 expected "," or "]", found end of input'],
    ['{"a": tru}', '1:7 unexpected "tru"'],
    ['{"a": yes}', '1:7 unexpected "yes" (strings need double quotes)'],
    ['{"a": 01}', '1:8 expected "," or "}", found "1"'],
    ['{"a": -}', '1:7 invalid number, found "-"'],
    ['{"a": "x\u0001"}', "1:9 control character U+0001 in a string (escape it)"],
    ['{"a": "\\q"}', '1:8 invalid escape "\\\\q"'],
    ['{"a": "\\u12"}', '1:8 invalid escape "\\\\u12\\"}"'],
    ['{"a": "open', "1:12 unterminated string, found end of input"],
    ['{"a": 1} {"b": 2}', '1:10 unexpected "{" after the end of the value'],
    ["", "1:1 expected a value, found end of input"],
    ["{'a': 1}", '1:2 expected a property name in double quotes, found "\'"'],
    ['{"a" 1}', '1:6 expected ":", found "1"'],
  ];
  for (const [text, want] of cases) {
    await t.step(JSON.stringify(text), () => {
      const e = locateJsonError(text);
      assertEquals(e && `${e.line}:${e.column} ${e.message}`, want);
      let parsed = true;
      try {
        JSON.parse(text);
      } catch {
        parsed = false;
      }
      assertEquals(parsed, false, "JSON.parse must reject it too");
    });
  }
});
