#!/usr/bin/env node
// A loopback stand-in for a Stacks node, backed by a real Clarity VM: the simnet of
// `@stacks/clarinet-sdk` runs contracts/stacks (Conclave's signer registry) in-process, and this
// server answers the two Stacks node RPC endpoints Conclave reads from the simnet's state:
//
//   GET /v2/info                                            the tip height
//   GET /v2/data_var/{address}/{contract}/{var}?proof=0     {"data": "0x<Clarity serialization>"}
//                                                           (404 when the contract or var is unknown)
//
// The value is the VM's own consensus serialization of the data variable, not a re-encoding.
// Tests and the devnet drive the VM through control endpoints:
//
//   POST /control/rotate  {"keys": ["<hex>", …], "aggregate": "<hex>", "threshold": n}
//        calls rotate-keys as the deployer; answers {"ok", "result", "height", "events"}
//   POST /control/outage  {"on": true|false}   while on, the node endpoints drop every
//                                              connection unanswered (a node that is down)
//
// Usage: node scripts/stacks-simnet.mjs [--port N]   (0, the default: the OS picks)
// Prints one JSON line once listening: {"port", "contract", "deployer"}.

import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { initSimnet } from "@stacks/clarinet-sdk";
import { SDK } from "@stacks/clarinet-sdk-wasm";
import { Cl, cvToString } from "@stacks/transactions";

const CONTRACT_NAME = "signer-registry";
const MAX_BODY = 64 * 1024;

function parseArgs(argv) {
  let port = 0;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--port") port = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]} (expected --port N)`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error("--port expects a port number (0: the OS picks)");
  }
  return { port };
}

// The simnet writes its deployment plan and cache beside the manifest: run on a private copy so
// concurrent servers (parallel tests) never share files, and the repository stays untouched.
const here = dirname(fileURLToPath(import.meta.url));
const project = mkdtempSync(join(tmpdir(), "conclave-stacks-"));
cpSync(join(here, "..", "contracts", "stacks"), project, { recursive: true });
process.chdir(project);
const cleanup = () => rmSync(project, { recursive: true, force: true });
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    cleanup();
    process.exit(0);
  });
}
process.on("exit", cleanup);

const { port } = parseArgs(process.argv.slice(2));
const simnet = await initSimnet("./Clarinet.toml");
const deployer = simnet.getAccounts().get("deployer");
const contract = `${deployer}.${CONTRACT_NAME}`;
let outage = false;

// The SDK's `getDataVar` decodes the VM's answer into a JS value; the VM's method itself answers
// the serialization, which is what a Stacks node sends.
function rawDataVar(contractId, name) {
  const hex = SDK.prototype.getDataVar.call(simnet, contractId, name);
  return hex.startsWith("0x") ? hex : `0x${hex}`;
}

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error(`body over ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}"));
      } catch (e) {
        reject(new Error(`body is not JSON: ${e.message}`));
      }
    });
    req.on("error", reject);
  });
}

function hexBuffer(what, hex) {
  if (typeof hex !== "string" || !/^(0x)?([0-9a-fA-F]{2})*$/.test(hex)) {
    throw new Error(`${what} must be a hex string`);
  }
  return Cl.bufferFromHex(hex.replace(/^0x/, ""));
}

function rotate(body) {
  if (!Array.isArray(body.keys)) throw new Error("keys must be a list of hex strings");
  if (!Number.isInteger(body.threshold) || body.threshold < 0) {
    throw new Error("threshold must be a non-negative integer");
  }
  const keys = body.keys.map((k, i) => hexBuffer(`keys[${i}]`, k));
  const aggregate = hexBuffer("aggregate", body.aggregate ?? "");
  const sender = body.sender ?? deployer;
  const { result, events } = simnet.callPublicFn(
    CONTRACT_NAME,
    "rotate-keys",
    [Cl.list(keys), aggregate, Cl.uint(body.threshold)],
    sender,
  );
  return {
    ok: result.type === "ok",
    result: cvToString(result),
    height: simnet.blockHeight,
    events: events.map((e) => (e.event === "print_event" ? cvToString(e.data.value) : e.event)),
  };
}

async function control(req, res, path) {
  if (req.method !== "POST") return answer(res, 405, { error: "control endpoints take POST" });
  let body;
  try {
    body = await readJson(req);
  } catch (e) {
    return answer(res, 400, { error: e.message });
  }
  try {
    if (path === "/control/rotate") return answer(res, 200, rotate(body));
    if (path === "/control/outage") {
      outage = body.on === true;
      return answer(res, 200, { outage });
    }
  } catch (e) {
    return answer(res, 400, { error: String(e?.message ?? e) });
  }
  return answer(res, 404, { error: `no control endpoint ${path}` });
}

function node(req, res, url) {
  if (outage) return req.socket.destroy();
  if (req.method !== "GET") return answer(res, 405, { error: "node endpoints take GET" });
  if (url.pathname === "/v2/info") {
    return answer(res, 200, {
      peer_version: 0,
      burn_block_height: simnet.burnBlockHeight,
      stacks_tip_height: simnet.blockHeight,
      network_id: 2147483648,
    });
  }
  const m = url.pathname.match(/^\/v2\/data_var\/([^/]+)\/([^/]+)\/([^/]+)$/);
  if (!m) return answer(res, 404, { error: `no endpoint ${url.pathname}` });
  const [, address, name, variable] = m;
  try {
    return answer(res, 200, { data: rawDataVar(`${address}.${name}`, variable) });
  } catch {
    res.writeHead(404, { "content-type": "text/plain" });
    return res.end(`no data var ${variable} in ${address}.${name}`);
  }
}

const server = createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  if (url.pathname.startsWith("/control/")) {
    control(req, res, url.pathname).catch((e) => answer(res, 500, { error: e.message }));
  } else {
    node(req, res, url);
  }
});
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port, contract, deployer })}\n`);
});
