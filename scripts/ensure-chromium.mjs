// Makes sure Debian's Chromium is installed for the documentation site's browser test
// (scripts/docs-site.test.ts drives /usr/bin/chromium with playwright-core; Playwright's own
// browser downloads are not used). Installs it with apt-get when it is missing and this
// process may (root); otherwise says how.
//
//   node scripts/ensure-chromium.mjs
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

export const CHROMIUM = "/usr/bin/chromium";

function main() {
  if (existsSync(CHROMIUM)) {
    process.stdout.write(`ensure-chromium: ${CHROMIUM} is installed\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write(`ensure-chromium: ${CHROMIUM} is missing; install it with \`sudo apt-get update && sudo apt-get install -y chromium\`\n`);
    return 1;
  }
  process.stdout.write("ensure-chromium: installing Debian's chromium with apt-get\n");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  try {
    execFileSync("apt-get", ["update"], { stdio: ["ignore", "ignore", "inherit"], env });
    execFileSync("apt-get", ["install", "-y", "chromium"], { stdio: ["ignore", "ignore", "inherit"], env });
  } catch {
    process.stderr.write("ensure-chromium: apt-get could not install chromium\n");
    return 1;
  }
  if (!existsSync(CHROMIUM)) {
    process.stderr.write(`ensure-chromium: apt-get finished but ${CHROMIUM} is still missing\n`);
    return 1;
  }
  process.stdout.write(`ensure-chromium: installed ${CHROMIUM}\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === `file://${process.argv[1]}`) process.exitCode = main();
