#!/usr/bin/env node
// Fails when modules inside one crate depend on each other in a circle (`crate::a` uses
// `crate::b` and `crate::b` uses `crate::a`, directly or through others). A circle means two
// rooms that cannot be understood or changed one at a time. Edges are `crate::` and `super::`
// paths outside comments; a module's own parent or children do not count.
//
// Usage: node scripts/check-module-cycles.mjs [crate dir…]   (default: crates/* and bench)
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

function rustFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return rustFiles(path);
    return name.endsWith(".rs") ? [path] : [];
  });
}

function modules(crate) {
  const src = join(crate, "src");
  const mods = new Map();
  for (const file of rustFiles(src)) {
    let parts = relative(src, file).slice(0, -3).split("/");
    if (parts.at(-1) === "mod") parts = parts.slice(0, -1);
    if (parts.length === 1 && (parts[0] === "lib" || parts[0] === "main")) continue;
    const text = readFileSync(file, "utf8").replace(/\/\/[^\n]*/g, "");
    mods.set(parts.join("::"), text);
  }
  return mods;
}

function edges(mods) {
  const graph = new Map();
  for (const [name, text] of mods) {
    const deps = new Set();
    for (const [, path] of text.matchAll(/crate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)/g)) {
      const segs = path.split("::");
      for (let k = segs.length; k > 0; k--) {
        const m = segs.slice(0, k).join("::");
        if (mods.has(m)) {
          deps.add(m);
          break;
        }
      }
    }
    const parent = name.split("::").slice(0, -1).join("::");
    for (const [, sib] of text.matchAll(/super::([a-z_][a-z0-9_]*)/g)) {
      const m = parent ? `${parent}::${sib}` : sib;
      if (mods.has(m)) deps.add(m);
    }
    const related = (d) => d === name || name.startsWith(`${d}::`) || d.startsWith(`${name}::`);
    graph.set(name, [...deps].filter((d) => !related(d)));
  }
  return graph;
}

// Tarjan's strongly connected components; any component of two or more is a cycle.
function cycles(graph) {
  let next = 0;
  const index = new Map(), low = new Map(), stack = [], onStack = new Set(), found = [];
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), index.get(w)));
      }
    }
    if (low.get(v) === index.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) found.push(comp);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const crates = process.argv.length > 2
  ? process.argv.slice(2)
  : [...readdirSync("crates").map((c) => join("crates", c)), "bench"];
let failed = false;
for (const crate of crates) {
  for (const cycle of cycles(edges(modules(crate)))) {
    console.error(`${crate}: modules depend on each other in a circle: ${cycle.sort().join(", ")}`);
    failed = true;
  }
}
if (failed) process.exit(1);
console.log(`no module cycles in ${crates.length} crates`);
