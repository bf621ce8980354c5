//! The built-in device conventions, written in the same form as `[[mqtt.mappings]]` so a user
//! can copy and adapt one: zigbee2mqtt, Tasmota (default FullTopic `%prefix%/%topic%/`) and
//! Homie 4. docs/mqtt.md shows what each produces.

use super::config::MappingConfig;
use serde::Deserialize;

/// Names of the presets.
pub const NAMES: [&str; 3] = ["zigbee2mqtt", "tasmota", "homie"];

const ZIGBEE2MQTT: &str = r#"
[[mappings]]
name = "zigbee2mqtt"
topic = "zigbee2mqtt/{thing}"
payload = "properties"
feature = "zigbee"
availability = "zigbee2mqtt/{thing}/availability"
online = ["online"]
offline = ["offline"]
command = "zigbee2mqtt/{thing}/set"
"#;

const TASMOTA: &str = r#"
[[mappings]]
name = "tasmota"
topic = "tele/{thing}/SENSOR"
payload = "features"
feature = "tasmota"
availability = "tele/{thing}/LWT"
online = ["online"]
offline = ["offline"]
command = "cmnd/{thing}/{property}"

[[mappings]]
name = "tasmota"
topic = "tele/{thing}/STATE"
payload = "features"
feature = "tasmota"

[[mappings]]
name = "tasmota"
topic = "stat/{thing}/RESULT"
payload = "features"
feature = "tasmota"

[[mappings]]
name = "tasmota"
topic = "stat/{thing}/POWER"
payload = "value"
feature = "tasmota"
property = "POWER"
"#;

const HOMIE: &str = r#"
[[mappings]]
name = "homie"
topic = "homie/{thing}/{feature}/{property}"
payload = "value"
availability = "homie/{thing}/$state"
online = ["ready"]
offline = ["disconnected", "lost", "sleeping"]
command = "homie/{thing}/{feature}/{property}/set"
"#;

#[derive(Deserialize)]
struct File {
    mappings: Vec<MappingConfig>,
}

/// The mappings of a preset, `None` for an unknown name.
pub fn preset(name: &str) -> Option<Vec<MappingConfig>> {
    let text = match name {
        "zigbee2mqtt" => ZIGBEE2MQTT,
        "tasmota" => TASMOTA,
        "homie" => HOMIE,
        _ => return None,
    };
    // The texts are constants checked by the unit test below.
    toml::from_str::<File>(text).ok().map(|f| f.mappings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses() {
        for n in NAMES {
            let m = preset(n).unwrap_or_else(|| panic!("preset {n}"));
            assert!(!m.is_empty());
            assert!(m.iter().all(|x| x.name.as_deref() == Some(n)));
        }
        assert!(preset("x").is_none());
    }
}
