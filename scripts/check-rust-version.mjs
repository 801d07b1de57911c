// Checks that the workspace's declared `rust-version` (Cargo.toml) is a true minimum: no package
// in the lock graph declares a higher one (from `cargo metadata`), and every workspace member
// inherits the workspace's value. Fails with the offending packages and the version to declare.
//
//   node scripts/check-rust-version.mjs
import { execFileSync } from "node:child_process";

const meta = JSON.parse(
  execFileSync("cargo", ["metadata", "--format-version", "1", "--locked"], {
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  }),
);

const parse = (v) => {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(v);
  if (!m) throw new Error(`rust-version '${v}' is not MAJOR.MINOR[.PATCH]`);
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
};
const cmp = (a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

const members = new Set(meta.workspace_members);
const own = meta.packages.filter((p) => members.has(p.id));
const declared = [...new Set(own.map((p) => p.rust_version))];
if (declared.length !== 1 || !declared[0]) {
  const list = own.map((p) => `${p.name}=${p.rust_version ?? "none"}`).join(", ");
  console.error(`rust-version: every workspace member must declare the workspace's one value; found ${list}`);
  process.exit(1);
}
const floor = parse(declared[0]);

const above = meta.packages
  .filter((p) => !members.has(p.id) && p.rust_version && cmp(parse(p.rust_version), floor) > 0)
  .sort((a, b) => cmp(parse(b.rust_version), parse(a.rust_version)));
if (above.length > 0) {
  console.error(`rust-version: the workspace declares ${declared[0]}, but locked dependencies need more:`);
  for (const p of above.slice(0, 20)) console.error(`  ${p.name} ${p.version} needs ${p.rust_version}`);
  if (above.length > 20) console.error(`  … and ${above.length - 20} more`);
  console.error(`declare rust-version = "${above[0].rust_version}" in Cargo.toml (or lock older dependencies)`);
  process.exit(1);
}
const highest = meta.packages
  .filter((p) => !members.has(p.id) && p.rust_version)
  .reduce((best, p) => (cmp(parse(p.rust_version), parse(best)) > 0 ? p.rust_version : best), "0.0.0");
console.log(`rust-version ${declared[0]}: no locked dependency needs more (the highest needs ${highest})`);
