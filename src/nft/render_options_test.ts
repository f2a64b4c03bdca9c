import { cidr } from "../../tests/support/nft_fixtures.ts";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { disjointCidrs } from "./render_options.ts";

Deno.test("render: disjointCidrs drops nested CIDRs and keeps disjoint ones", () => {
  assertEquals(
    disjointCidrs([
      cidr("198.18.0.0/24"),
      cidr("198.18.0.0/16"),
      cidr("198.20.0.0/16"),
      cidr("2001:db8::/64"),
    ])
      .map((c) => c.text),
    ["198.18.0.0/16", "198.20.0.0/16", "2001:db8::/64"],
    "disjoint",
  );
});
