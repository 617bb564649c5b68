//! Builds the pause program (pause/pause.c) as a static binary, embedded in the agent to make
//! the image that holds awsvpc tasks' network namespaces. Without a C compiler and a static libc
//! the agent builds but refuses awsvpc tasks.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=pause/pause.c");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("pause");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let ok = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&out)
        .arg("pause/pause.c")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        println!(
            "cargo:warning=could not build the static pause binary; awsvpc tasks will be refused"
        );
        let _ = std::fs::write(&out, b"");
    }
}
