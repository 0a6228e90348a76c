//! `DomainDef::parse` on any text: it never panics, and whatever it accepts formats to a
//! document that parses again to the same definition and formats to the same text (what the
//! store relies on: it keeps the formatted definition and parses it at the next start).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rvirtd::xml::{DomainDef, ParseDefaults};

/// The test driver's defaults (`driver::test`).
const DEFAULTS: ParseDefaults = ParseDefaults { arch: "i686" };

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(def) = DomainDef::parse(text, &DEFAULTS) else { return };
    let out = def.to_xml(None);
    let again = DomainDef::parse(&out, &DEFAULTS)
        .unwrap_or_else(|error| panic!("the formatted definition is refused: {error}\n{out}"));
    assert_eq!(again, def, "the formatted definition parses to another one:\n{out}");
    assert_eq!(again.to_xml(None), out, "formatting is not stable");
    // An active domain's document (with its id) describes the same definition.
    let active = def.to_xml(Some(7));
    assert_eq!(DomainDef::parse(&active, &DEFAULTS).ok().as_ref(), Some(&def), "{active}");
    let _ = def.unmodelled();
});
