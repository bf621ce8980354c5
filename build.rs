//! Link step only: with lld (the default linker of x86_64-unknown-linux-gnu since Rust 1.90,
//! and `rust-lld` for the aarch64 musl cross build), `link/cold.ld` moves code an idle gateway
//! never runs behind the rest of `.text`, so fewer of the binary's pages are resident.

fn main() {
    println!("cargo:rerun-if-changed=link/cold.ld");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let target = std::env::var("TARGET").unwrap_or_default();
    let script = format!(
        "{}/link/cold.ld",
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()
    );
    let linker = std::env::var("RUSTC_LINKER").unwrap_or_default();
    if linker.ends_with("rust-lld") || linker.ends_with("ld.lld") {
        println!("cargo:rustc-link-arg-bins=-T{script}");
    } else if target == "x86_64-unknown-linux-gnu" && linker.is_empty() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{script}");
    }
}
