//! Test certificates made with the `openssl` command line for each run: a CA and certificates
//! it signs (v3, with subjectAltName; webpki refuses v1 certificates). `None` with a reason when
//! openssl is missing, so a test can print SKIPPED (scripts/test.sh installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `openssl ARGS` in `dir`; panics with its stderr on failure.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `Err(reason)` if the openssl command line is not there.
pub fn available() -> Result<(), String> {
    match Command::new("openssl").arg("version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("openssl not installed (scripts/test.sh installs it)".into()),
    }
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A self-signed CA `<name>.crt` / `<name>.key` in `dir`.
pub fn ca(dir: &Path, name: &str) -> PathBuf {
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    let subj = format!("/CN=edgetwin test {name}");
    let mut args = vec!["req", "-x509"];
    args.extend(EC);
    args.extend(["-keyout", &key, "-out", &crt, "-subj", &subj, "-days", "2"]);
    openssl(dir, &args);
    dir.join(crt)
}

/// `<name>.crt` / `<name>.key` signed by the CA `<ca>.crt` in `dir`, with the v3 extensions
/// `ext` (e.g. `subjectAltName=DNS:localhost,IP:127.0.0.1`). Returns (cert, key).
pub fn signed(dir: &Path, ca: &str, name: &str, ext: &str) -> (PathBuf, PathBuf) {
    let (key, csr, crt, extf) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&extf), format!("{ext}\n")).expect("ext file");
    let mut req = vec!["req"];
    req.extend(EC);
    req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
    openssl(dir, &req);
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &extf,
        ],
    );
    (dir.join(crt), dir.join(key))
}
