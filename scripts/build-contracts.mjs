// Compiles contracts/*.sol with the pinned solc (npm `solc`, see package.json) into
// contracts/out/<Name>.json: { contractName, compiler, abi, bytecode, deployedBytecode }.
// Deterministic: same sources + same settings = same bytes (CI rebuilds and compares).
//
//   node scripts/build-contracts.mjs            # write contracts/out/
//   node scripts/build-contracts.mjs --check    # fail if contracts/out/ differs from a fresh build
import { readFileSync, writeFileSync, readdirSync, mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = join(root, "contracts");
const outDir = join(srcDir, "out");
const check = process.argv.includes("--check");

const sources = {};
for (const f of readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[f] = { content: readFileSync(join(srcDir, f), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    viaIR: true,
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
// Warnings fail the build too: the contract guards real money.
for (const e of output.errors || []) console.error(e.formattedMessage);
if ((output.errors || []).some((e) => e.severity === "error" || e.severity === "warning")) process.exit(1);

mkdirSync(outDir, { recursive: true });
let stale = [];
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: `solc ${solc.version()}`,
      abi: c.abi,
      bytecode: { object: "0x" + c.evm.bytecode.object },
      deployedBytecode: { object: "0x" + c.evm.deployedBytecode.object },
    };
    const text = JSON.stringify(artifact, null, 2) + "\n";
    const path = join(outDir, `${name}.json`);
    if (check) {
      let current = "";
      try { current = readFileSync(path, "utf8"); } catch { /* missing counts as stale */ }
      if (current !== text) stale.push(path);
    } else {
      writeFileSync(path, text);
      console.log(`wrote ${path} (${c.evm.deployedBytecode.object.length / 2} bytes deployed)`);
    }
  }
}
if (stale.length) {
  console.error(`committed artifacts differ from a fresh build: ${stale.join(", ")}\nrun: node scripts/build-contracts.mjs`);
  process.exit(1);
}
if (check) console.log("contract artifacts match a fresh build");
