// What OpenZeppelin's own StandardMerkleTree (npm @openzeppelin/merkle-tree) says about trees built by
// flb_dapp/merkle.py; tests/test_merkle_standard.py runs it and compares.
//
// stdin: {"cases": [{"values": [[address, "amount"], ...], "dump": <standard-v1 dump from Python>,
//                    "root": "0x..", "proofs": [[hex, ...], ...] (one per value, same order)}]}
// stdout: {"version": "<package version>", "cases": [{"ofRoot", "ofDump", "loadedRoot",
//          "verified": [bool, ...], "ofProofs": [[hex, ...], ...], "loadedProofs": [[hex, ...] | null, ...]}]}
// Any failure (missing package, a dump `load` refuses, ...) exits non-zero: the test must fail then.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

const require = createRequire(import.meta.url);
// The version of the copy this script resolved, so the test can check it is the project's pin.
const { version } = require("@openzeppelin/merkle-tree/package.json");

const input = JSON.parse(readFileSync(0, "utf8"));
const cases = input.cases.map(({ values, dump, root, proofs }) => {
  const encoding = dump.leafEncoding;
  const built = StandardMerkleTree.of(values, encoding);
  // load() also runs validate(): every node hashes its children and every value sits at its leaf.
  const loaded = StandardMerkleTree.load(dump);
  return {
    ofRoot: built.root,
    ofDump: built.dump(),
    loadedRoot: loaded.root,
    verified: values.map((value, i) => StandardMerkleTree.verify(root, encoding, value, proofs[i])),
    ofProofs: values.map((value) => built.getProof(value)),
    // By value, not by index: the loaded tree must find each leaf through its own hash lookup.
    // null where it has no such leaf (a test hands in a forged value); the test then sees it.
    loadedProofs: values.map((value) => {
      try {
        return loaded.getProof(value);
      } catch {
        return null;
      }
    }),
  };
});
process.stdout.write(JSON.stringify({ version, cases }));
