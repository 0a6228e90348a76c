//! The UUID field parser every request goes through (`grpc::convert::uuid`, libvirt's
//! virUUIDParse): it never panics; what it accepts, written hyphenated, lower or upper case, or
//! as 32 bare digits, parses back to the same UUID; and it agrees with the `uuid` crate on the
//! hyphenated and bare forms.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rvirtd::grpc::convert::uuid;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = uuid(text);
    if text.len() > 64 {
        assert!(parsed.is_err(), "a {}-byte field accepted", text.len());
    }
    if let Ok(value) = &parsed {
        let hyphenated = value.hyphenated().to_string();
        let upper = hyphenated.to_uppercase();
        let simple = value.simple().to_string();
        for form in [&hyphenated, &upper, &simple] {
            assert_eq!(uuid(form).ok().as_ref(), Some(value), "{text:?} gave {value}, {form:?} does not");
        }
    }
    // Where the uuid crate reads the same forms (not braced, not urn:uuid:), both agree.
    if matches!(text.len(), 32 | 36)
        && let Ok(expected) = ::uuid::Uuid::try_parse(text)
    {
        assert_eq!(parsed.ok(), Some(expected), "{text:?}");
    }
});
