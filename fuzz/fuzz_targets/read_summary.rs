#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetwin_fuzz_target("read_summary", data));

fn edgetwin_fuzz_target(name: &str, data: &[u8]) {
    if let Some(edgetwin::fuzz::Verdict::Violated(why)) = edgetwin::fuzz::verdict(name, data) {
        panic!("{name}: {why}");
    }
}
