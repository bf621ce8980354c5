//! Link step only (issue 15, idle RSS): with lld (the default linker of x86_64-unknown-linux-gnu
//! since Rust 1.90, and `rust-lld` for the aarch64 musl cross build) `link/cold.ld` moves code an
//! idle gateway never runs behind the rest of `.text`; on x86_64 glibc `link/hot.txt` (symbol
//! names of an x86_64 build, scripts/hot-order.sh) puts the code it does run first, and the
//! relative relocations are packed (DT_RELR).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=link/cold.ld");
    println!("cargo:rerun-if-changed=link/hot.txt");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    println!("cargo:rerun-if-env-changed=EDGETWIN_LINK_MAP");
    let target = std::env::var("TARGET").unwrap_or_default();
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let script = format!("{dir}/link/cold.ld");
    let hot = format!("{dir}/link/hot.txt");
    let linker = std::env::var("RUSTC_LINKER").unwrap_or_default();
    let arg = |a: &str| println!("cargo:rustc-link-arg-bins={a}");
    if linker.ends_with("rust-lld") || linker.ends_with("ld.lld") {
        arg(&format!("-T{script}"));
    } else if target == "x86_64-unknown-linux-gnu" && linker.is_empty() {
        // cc drives rust-lld here (Rust >= 1.90); BFD would also take the script
        arg(&format!("-Wl,-T,{script}"));
        if Path::new(&hot).is_file() && default_lld() {
            // a name no longer in the build (stale list) is skipped, never an error
            arg(&format!("-Wl,--symbol-ordering-file={hot}"));
            arg("-Wl,--no-warn-symbol-ordering");
        }
        // ~200 KB of relocation entries become ~3 KB; needs glibc >= 2.36 where it runs, so
        // only when the glibc it is built against has it (`cargo run --release` on that box)
        if glibc_has_relr() {
            arg("-Wl,-z,pack-relative-relocs");
        }
        // scripts/hot-order.sh: the linker map, to name the code an idle gateway runs
        if let Ok(map) = std::env::var("EDGETWIN_LINK_MAP") {
            arg(&format!("-Wl,-Map={map}"));
        }
    }
}

/// Whether cc links with rust-lld (Rust >= 1.90 on this target, no linker chosen in RUSTFLAGS);
/// BFD would refuse the ordering file.
fn default_lld() -> bool {
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.contains("linker") || flags.contains("fuse-ld") {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(rustc).arg("-V").output();
    let v = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    // "rustc 1.95.0 (...)"
    let minor = v.ok().and_then(|v| {
        let mut it = v.split_whitespace().nth(1)?.split('.');
        Some((
            it.next()?.parse::<u32>().ok()?,
            it.next()?.parse::<u32>().ok()?,
        ))
    });
    minor.is_some_and(|(major, minor)| major > 1 || minor >= 90)
}

/// Whether the build host's glibc can load packed relative relocations (version 2.36).
fn glibc_has_relr() -> bool {
    [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
        "/usr/lib64/libc.so.6",
    ]
    .iter()
    .find_map(|p| std::fs::read(p).ok())
    .is_some_and(|b| b.windows(17).any(|w| w == b"GLIBC_ABI_DT_RELR"))
}
