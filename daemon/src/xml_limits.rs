//! Limits on an XML document's shape (elements, attributes per element and in all, depth),
//! checked in one linear pass over its bytes before any parser sees it. A parser's own cost can
//! grow faster than its input (roxmltree checks duplicate attributes pairwise: 100,000 attributes
//! on one element cost seconds of CPU), so a document is refused on its shape first, in
//! microseconds per KiB, whatever it holds.

/// The most elements a document may have. libvirt domain definitions have hundreds.
pub const MAX_ELEMENTS: usize = 10_000;
/// The most attributes one element may have.
pub const MAX_ATTRIBUTES_PER_ELEMENT: usize = 256;
/// The most attributes a document may have in all.
pub const MAX_ATTRIBUTES: usize = 50_000;
/// The deepest nesting of elements.
pub const MAX_DEPTH: usize = 128;
/// The most namespace declarations (`xmlns`, `xmlns:p`) a document may make: roxmltree copies and
/// compares every prefix in scope at each element that declares one, quadratic in their number.
/// libvirt documents use a handful (`xmlns:qemu`, metadata namespaces).
pub const MAX_NAMESPACE_DECLARATIONS: usize = 32;

/// Checks `text` against the limits; the error names the limit it broke. A malformed document is
/// let through: the parser refuses it with a precise message.
pub fn check(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let (mut i, mut depth, mut elements, mut attributes, mut namespaces) =
        (0, 0usize, 0usize, 0usize, 0usize);
    let find = |from: usize, pattern: &[u8]| {
        bytes
            .get(from..)
            .and_then(|rest| rest.windows(pattern.len()).position(|w| w == pattern))
            .map(|p| from + p)
    };
    while let Some(open) = bytes.get(i..).and_then(|rest| rest.iter().position(|&b| b == b'<')).map(|p| i + p)
    {
        let rest = &bytes[open..];
        let skip_to = |pattern: &[u8]| find(open, pattern).map(|end| end + pattern.len());
        let next = if rest.starts_with(b"<!--") {
            skip_to(b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_to(b"]]>")
        } else if rest.starts_with(b"<?") {
            skip_to(b"?>")
        } else if rest.starts_with(b"<!") || rest.starts_with(b"</") {
            if rest.starts_with(b"</") {
                depth = depth.saturating_sub(1);
            }
            skip_to(b">")
        } else {
            elements += 1;
            if elements > MAX_ELEMENTS {
                return Err(format!("the document has more than {MAX_ELEMENTS} elements (the limit)"));
            }
            // The start tag: attributes are its `=` signs outside quoted values.
            // `name_start..j` is the token being read; `last` the one before it (`name = 'v'`).
            let (mut j, mut quote, mut here, mut name_start) = (open + 1, None, 0usize, open + 1);
            let mut last = open + 1..open + 1;
            let end = loop {
                let Some(&byte) = bytes.get(j) else { break None };
                match (quote, byte) {
                    (Some(q), b) if b == q => {
                        quote = None;
                        name_start = j + 1;
                    }
                    (Some(_), _) => {}
                    (None, b'"' | b'\'') => quote = Some(byte),
                    (None, b) if b.is_ascii_whitespace() => {
                        if j > name_start {
                            last = name_start..j;
                        }
                        name_start = j + 1;
                    }
                    (None, b'=') => {
                        here += 1;
                        // The attribute's name: the token before the `=`.
                        let name = if j > name_start { &bytes[name_start..j] } else { &bytes[last.clone()] };
                        if name == b"xmlns" || name.starts_with(b"xmlns:") {
                            namespaces += 1;
                            if namespaces > MAX_NAMESPACE_DECLARATIONS {
                                return Err(format!(
                                    "the document declares more than {MAX_NAMESPACE_DECLARATIONS} namespaces (the limit)"
                                ));
                            }
                        }
                    }
                    (None, b'>') => break Some(j),
                    _ => {}
                }
                j += 1;
            };
            if here > MAX_ATTRIBUTES_PER_ELEMENT {
                return Err(format!(
                    "an element has {here} attributes, more than {MAX_ATTRIBUTES_PER_ELEMENT} (the limit)"
                ));
            }
            attributes += here;
            if attributes > MAX_ATTRIBUTES {
                return Err(format!("the document has more than {MAX_ATTRIBUTES} attributes (the limit)"));
            }
            match end {
                Some(end) if bytes[end - 1] == b'/' => {}
                Some(_) => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(format!("elements are nested deeper than {MAX_DEPTH} (the limit)"));
                    }
                }
                None => {}
            }
            end.map(|end| end + 1)
        };
        match next {
            Some(next) => i = next,
            None => return Ok(()), // unterminated: the parser says where
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_documents_pass_and_each_limit_is_named() {
        let ok = "<?xml version='1.0'?><!-- a > b --><domain type='test' a=\"x=y\"><name>n</name>\
                  <![CDATA[<not><tags>]]><devices><disk/></devices></domain>";
        check(ok).unwrap();

        let attrs: String = (0..100_000).map(|n| format!(" a{n}='v'")).collect();
        let wide = format!("<domain{attrs}/>");
        assert!(check(&wide).unwrap_err().contains("attributes, more than 256"));

        let deep = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
        assert!(check(&deep).unwrap_err().contains("nested deeper than 128"));

        let many = format!("<r>{}</r>", "<e/>".repeat(MAX_ELEMENTS));
        assert!(check(&many).unwrap_err().contains("more than 10000 elements"));

        let element = format!("<e {}/>", (0..200).map(|n| format!("b{n}='1' ")).collect::<String>());
        let spread = format!("<r>{}</r>", element.repeat(300));
        assert!(check(&spread).unwrap_err().contains("more than 50000 attributes"));

        let namespaced = format!("<r>{}</r>", "<b xmlns:q='u'/>".repeat(40));
        assert!(check(&namespaced).unwrap_err().contains("more than 32 namespaces"));
        check("<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0' type = 'kvm'/>").unwrap();
        let spaced = format!("<r>{}</r>", "<b xmlns:q = 'u'/>".repeat(40));
        assert!(check(&spaced).unwrap_err().contains("namespaces"));

        // Depth comes back down with end tags: many siblings are fine.
        check(&format!("<r>{}</r>", "<a><b/></a>".repeat(2_000))).unwrap();
    }
}
