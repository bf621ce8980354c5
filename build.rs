//! Link step only (issue 15, idle RSS): with lld (the default linker of x86_64-unknown-linux-gnu
//! since Rust 1.90, and `rust-lld` for the aarch64 musl cross build) `link/cold.ld` moves code an
//! idle gateway never runs behind the rest of `.text`; on x86_64 glibc `link/hot.txt` (symbol
//! names of an x86_64 build, scripts/hot-order.sh) puts the code it does run together, and the
//! relative relocations are packed (DT_RELR).

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
        // cc drives rust-lld here (Rust >= 1.90); BFD would also take the scripts. The functions
        // an idle gateway runs come first, so they are claimed before cold.ld's patterns.
        if let Some(ld) = hot_script(&hot) {
            arg(&format!("-Wl,-T,{ld}"));
        }
        arg(&format!("-Wl,-T,{script}"));
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

/// `link/hot.txt` (one symbol a line) as a linker script: a `.text.hot` section after `.fini`,
/// next to the other code run at start-up (`.init`, `.fini`, `.plt`) at the end of the code
/// segment. A name that is not in the build (a stale list) matches nothing: no error.
fn hot_script(list: &str) -> Option<String> {
    let names = std::fs::read_to_string(list).ok()?;
    let mut ld = String::from("SECTIONS\n{\n  .text.hot : {\n");
    for n in names.lines().map(str::trim).filter(|n| !n.is_empty()) {
        // symbol names only (mangled Rust names and C identifiers): nothing a script would parse
        if !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_$.".contains(&b))
        {
            continue;
        }
        ld.push_str(&format!("    *(.text.{n} .text.unlikely.{n})\n"));
    }
    ld.push_str("  }\n}\nINSERT AFTER .fini;\n");
    let out = format!("{}/hot.ld", std::env::var("OUT_DIR").ok()?);
    std::fs::write(&out, ld).ok()?;
    Some(out)
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
