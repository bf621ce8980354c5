//! `mqtts://` brokers: with the `mqtt-tls` feature edgetwin connects to a mosquitto TLS
//! listener that requires a client certificate (CA, certificate and key from `[mqtt]`), and
//! telemetry flows; without the feature a TLS URL is a configuration error, not a silent
//! plain-text connection. Certificates are made by the `openssl` command line for each run.

#[cfg(feature = "mqtt-tls")]
mod tls {
    use crate::common::block_on;
    use crate::common::certs;
    use crate::common::mqtt::{
        free_port, wait_ready, wait_status, wait_thing, Broker, Device, Edge,
    };
    use std::path::Path;

    /// A CA, a server certificate for localhost / 127.0.0.1 and a client certificate.
    fn make_certs(dir: &Path) {
        certs::ca(dir, "ca");
        certs::signed(
            dir,
            "ca",
            "server",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        );
        certs::signed(dir, "ca", "client", "extendedKeyUsage=clientAuth");
        // mosquitto started as root reads them as its own user
        for f in std::fs::read_dir(dir).expect("dir").flatten() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o644));
        }
    }

    #[test]
    fn telemetry_flows_over_tls_with_a_client_certificate() {
        let tls_port = free_port();
        let broker = Broker::start_with(free_port(), |dir| {
            make_certs(dir);
            format!(
                "listener {tls_port} 127.0.0.1\ncafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\nrequire_certificate true\n",
                d = dir.display()
            )
        });
        let tls_toml = |d: &Path| {
            format!(
                "[mqtt]\nca_file = \"{d}/ca.crt\"\nclient_cert_file = \"{d}/client.crt\"\nclient_key_file = \"{d}/client.key\"\n\
                 [[mqtt.mappings]]\ntopic = \"sensors/{{thing}}/{{property}}\"\nfeature = \"env\"\n",
                d = d.display()
            )
        };
        // certificates of another CA: the server is not trusted, no connection
        let other = tempfile::tempdir().expect("tempdir");
        make_certs(other.path());
        let untrusted = Edge::start(
            &format!("mqtts://127.0.0.1:{tls_port}"),
            &tls_toml(other.path()),
        );
        block_on(async {
            let s = wait_status(untrusted.addr(), |s| {
                s["connectionErrors"].as_u64() >= Some(2)
            })
            .await;
            assert_eq!(
                (s["connects"].as_u64(), &s["connected"]),
                (Some(0), &serde_json::json!(false)),
                "{s}"
            );
        });
        drop(untrusted);
        // the broker's own CA and a client certificate it signed
        let edge = Edge::start(
            &format!("mqtts://127.0.0.1:{tls_port}"),
            &tls_toml(broker.dir()),
        );
        let dev = Device::connect(broker.port, "tls-sensor"); // plain listener for the test device
        block_on(async {
            let s = wait_ready(edge.addr()).await;
            assert_eq!(s["broker"], format!("mqtts://127.0.0.1:{tls_port}"));
            dev.publish_acked("sensors/vault/temp", "12.5");
            wait_thing(edge.addr(), "edge:vault", |t| {
                t["features"]["env"]["properties"]["temp"] == 12.5
            })
            .await;
        });
    }
}

#[cfg(not(feature = "mqtt-tls"))]
#[test]
fn a_tls_url_without_the_feature_is_a_configuration_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgetwin"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--mqtt",
            "mqtts://127.0.0.1:8883",
        ])
        .output()
        .expect("run edgetwin");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mqtt-tls"), "{err}");
}
