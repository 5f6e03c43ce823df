//! Puts the web console's browser bundle (`console/dist/console.js`, built by `npm run build`
//! in `console/`, which the README's commands do) where the manager embeds it. Without it the
//! manager still builds, and its console page says how to build the bundle.

use std::path::Path;

fn main() {
    // The directory at run time, not the one this script was compiled in: builds of other
    // checkouts that share a target dir reuse the compiled script.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dist = Path::new(&manifest).join("../console/dist/console.js");
    println!("cargo:rerun-if-changed={}", dist.display());
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("console.js");
    let bundle = std::fs::read(&dist).unwrap_or_else(|_| {
        println!(
            "cargo:warning=console/dist/console.js not built: the web console will say so (run ./deploy/quickstart.sh, or npm ci && npm run build in console/)"
        );
        b"document.body.textContent = 'The console was not built into this manager: run npm ci && npm run build in console/, then cargo build again.';".to_vec()
    });
    std::fs::write(&out, bundle).expect("OUT_DIR is writable");
}
