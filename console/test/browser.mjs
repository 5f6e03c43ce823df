// Headless Debian Chromium for the console's tests (or $CHROMIUM), by playwright-core. A
// browser that does not start ends the run with exit code 2: a failed setup is a failure.

import { chromium } from "playwright-core";

/**
 * `--ignore-certificate-errors`: the test clusters' certificates come from a CA of their own
 * that a fresh profile does not know (a user imports ca.pem instead; see the README).
 */
export async function launch() {
  try {
    return await chromium.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      args: ["--no-sandbox", "--ignore-certificate-errors"],
    });
  } catch (e) {
    console.error(`cannot start Chromium (install Debian's chromium, or set CHROMIUM): ${e.message}`);
    process.exit(2);
  }
}
