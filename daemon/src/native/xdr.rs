//! XDR (RFC 4506) as libvirt's remote protocol uses it, hand-written from the documented wire
//! format: every item is a multiple of 4 bytes, big-endian; `hyper` is 8 bytes; strings and opaque
//! data are a length word, the bytes and zero padding to 4; optional data (`T *`) is a 0/1 word
//! then the value; variable arrays (`T<N>`) are a length word then the elements. rpcgen's `char`,
//! `unsigned char`, `short` and `unsigned short` are full words, and `char` arrays are one word per
//! char ([`CharWords`], [`FixedChars`]).
//!
//! Decoding never trusts a length: it is checked against the type's bound and against what is left
//! of the input before anything is allocated, so a hostile message costs at most its own size.
//! Encoding cannot fail: the bounded types ([`List`], [`CharWords`]) check their bound when built
//! with `new`.

use std::fmt;

/// `REMOTE_STRING_MAX` (= `VIR_NET_MESSAGE_STRING_MAX`): the longest `remote_nonnull_string`, in
/// bytes.
pub const REMOTE_STRING_MAX: u32 = 4_194_304;

/// Why some bytes are not a valid XDR encoding of the expected type.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XdrError {
    /// The input ended early.
    #[error("truncated XDR input: {needed} more bytes needed, {left} left")]
    Short {
        /// Bytes the next item needs (for an array, the least its elements can take).
        needed: usize,
        /// Bytes left in the input.
        left: usize,
    },
    /// A string, opaque, array or char array is longer than its bound.
    #[error("{what} of {len} {} exceeds the limit of {max}", unit(what))]
    TooLong {
        /// What was too long: "string", "opaque", "array" or "char array".
        what: &'static str,
        /// Its length on the wire (bytes, or elements for arrays).
        len: u32,
        /// Its bound.
        max: u32,
    },
    /// A `char` word holds no char: neither 0..=255 nor a sign-extended negative char.
    #[error("char word {value:#010x} is out of range")]
    BadChar {
        /// The word found.
        value: u32,
    },
    /// A string is not UTF-8.
    #[error("string is not valid UTF-8")]
    NotUtf8,
    /// The padding after a string or opaque holds a non-zero byte.
    #[error("non-zero XDR padding")]
    BadPadding,
    /// Bytes are left after the value.
    #[error("{left} trailing bytes after the XDR value")]
    Trailing {
        /// How many.
        left: usize,
    },
}

fn unit(what: &str) -> &'static str {
    match what {
        "array" => "elements",
        "char array" => "chars",
        _ => "bytes",
    }
}

/// A cursor over XDR input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not yet read (the reader does not move): e.g. a message's payload after its
    /// header.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Ok if everything was read, else [`XdrError::Trailing`].
    pub fn finish(self) -> Result<(), XdrError> {
        match self.remaining() {
            0 => Ok(()),
            left => Err(XdrError::Trailing { left }),
        }
    }

    /// The next `n` bytes, raw.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], XdrError> {
        let left = self.remaining();
        if n > left {
            return Err(XdrError::Short { needed: n, left });
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    /// The next 4-byte big-endian word.
    pub fn word(&mut self) -> Result<u32, XdrError> {
        let mut word = [0; 4];
        word.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(word))
    }

    /// A length word, checked against `max` (for `what`) and against the input left, given that
    /// each of its items takes at least `min_bytes`.
    fn length(&mut self, what: &'static str, max: u32, min_bytes: usize) -> Result<usize, XdrError> {
        let len = self.word()?;
        if len > max {
            return Err(XdrError::TooLong { what, len, max });
        }
        let len = len as usize;
        let needed = len.saturating_mul(min_bytes);
        let left = self.remaining();
        if needed > left {
            return Err(XdrError::Short { needed, left });
        }
        Ok(len)
    }

    /// `len` bytes of data then their zero padding to a multiple of 4.
    fn padded(&mut self, len: usize) -> Result<&'a [u8], XdrError> {
        let bytes = self.take(len)?;
        if self.take(pad_len(len))?.iter().any(|&b| b != 0) {
            return Err(XdrError::BadPadding);
        }
        Ok(bytes)
    }

    /// A bool word: 0 is false and any other word true, as libvirtd's XDR (`xdr_bool`) reads it.
    /// go-libvirt relies on that: its CONNECT_OPEN puts the name's optional-data word as the bytes
    /// 01 00 00 00 (0x01000000), and libvirtd opens.
    fn discriminant(&mut self) -> Result<bool, XdrError> {
        Ok(self.word()? != 0)
    }

    /// A `char` word: 0..=255, or a negative char sign-extended (what a C client with a signed
    /// `char` sends for bytes >= 0x80).
    fn char_word(&mut self) -> Result<u8, XdrError> {
        match self.word()? {
            value @ 0..=0xff => Ok(value as u8),
            value @ 0xffff_ff80..=0xffff_ffff => Ok(value as u8),
            value => Err(XdrError::BadChar { value }),
        }
    }
}

/// A value with an XDR encoding.
pub trait Xdr: Sized {
    /// The fewest bytes any value of the type takes on the wire: lets an array's decoder refuse a
    /// length the input cannot hold before allocating for it.
    const MIN_BYTES: usize = 4;

    /// Appends the encoding of `self` to `out`.
    fn put(&self, out: &mut Vec<u8>);

    /// Reads one value from `r`.
    fn get(r: &mut Reader<'_>) -> Result<Self, XdrError>;
}

/// The XDR encoding of `v`.
pub fn encode<T: Xdr>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    v.put(&mut out);
    out
}

/// Decodes a `T` that must take all of `bytes`.
pub fn decode<T: Xdr>(bytes: &[u8]) -> Result<T, XdrError> {
    let mut r = Reader::new(bytes);
    let v = T::get(&mut r)?;
    r.finish()?;
    Ok(v)
}

/// Checks a length against a bound, naming `what` in the error: for callers that build bounded
/// values another way than `new`.
pub fn check_len(what: &'static str, len: usize, max: u32) -> Result<(), XdrError> {
    match u32::try_from(len) {
        Ok(len) if len <= max => Ok(()),
        Ok(len) => Err(XdrError::TooLong { what, len, max }),
        Err(_) => Err(XdrError::TooLong { what, len: u32::MAX, max }),
    }
}

fn pad_len(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Appends a length word; a length beyond `u32` is a caller's bug (bounds are far lower).
fn put_len(len: usize, out: &mut Vec<u8>) {
    debug_assert!(u32::try_from(len).is_ok(), "XDR length {len} does not fit a word");
    (len as u32).put(out);
}

/// Appends `bytes` and their zero padding.
fn put_padded(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes);
    out.extend_from_slice(&[0; 3][..pad_len(bytes.len())]);
}

/// Appends one `char` word for `byte`, sign-extended as a C client with a signed `char` does.
fn put_char(byte: u8, out: &mut Vec<u8>) {
    i32::from(byte as i8).put(out);
}

impl Xdr for u32 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        r.word()
    }
}

impl Xdr for i32 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        Ok(r.word()? as i32)
    }
}

/// `unsigned hyper`.
impl Xdr for u64 {
    const MIN_BYTES: usize = 8;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(r.take(8)?);
        Ok(u64::from_be_bytes(bytes))
    }
}

/// `hyper`.
impl Xdr for i64 {
    const MIN_BYTES: usize = 8;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        Ok(u64::get(r)? as i64)
    }
}

/// XDR `bool`: a word, 0 or 1 (read: 0 or not).
impl Xdr for bool {
    fn put(&self, out: &mut Vec<u8>) {
        u32::from(*self).put(out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        r.discriminant()
    }
}

/// `void`: nothing on the wire.
impl Xdr for () {
    const MIN_BYTES: usize = 0;
    fn put(&self, _out: &mut Vec<u8>) {}
    fn get(_r: &mut Reader<'_>) -> Result<Self, XdrError> {
        Ok(())
    }
}

/// `remote_nonnull_string`: `string<REMOTE_STRING_MAX>`, UTF-8. Encoding does not check the bound:
/// a longer string is the caller's bug (and the frame limit, 8 times larger, stops it).
/// Appends `text` as a `string` (what `String::put` does, without a `String`).
pub fn put_str(text: &str, out: &mut Vec<u8>) {
    put_len(text.len(), out);
    put_padded(text.as_bytes(), out);
}

impl Xdr for String {
    fn put(&self, out: &mut Vec<u8>) {
        put_str(self, out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        let len = r.length("string", REMOTE_STRING_MAX, 1)?;
        let bytes = r.padded(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| XdrError::NotUtf8)
    }
}

/// Optional data `T *` (`remote_string`, `remote_domain`): a 0/1 word, then the value if 1.
impl<T: Xdr> Xdr for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            None => 0u32.put(out),
            Some(v) => {
                1u32.put(out);
                v.put(out);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        match r.discriminant()? {
            false => Ok(None),
            true => T::get(r).map(Some),
        }
    }
}

/// Fixed opaque `opaque[16]` (`remote_uuid`): 16 bytes, no length word, no padding.
impl Xdr for [u8; 16] {
    const MIN_BYTES: usize = 16;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        let mut bytes = [0; 16];
        bytes.copy_from_slice(r.take(16)?);
        Ok(bytes)
    }
}

/// A variable-length array `T<MAX>`: a length word then the elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<T, const MAX: u32>(pub Vec<T>);

impl<T, const MAX: u32> List<T, MAX> {
    /// `items` as a list, if there are at most `MAX`.
    pub fn new(items: Vec<T>) -> Result<Self, XdrError> {
        check_len("array", items.len(), MAX)?;
        Ok(List(items))
    }

    /// The elements.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const MAX: u32> Default for List<T, MAX> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<T: Xdr, const MAX: u32> Xdr for List<T, MAX> {
    fn put(&self, out: &mut Vec<u8>) {
        debug_assert!(self.0.len() <= MAX as usize, "XDR array of {} exceeds its bound {MAX}", self.0.len());
        put_len(self.0.len(), out);
        for item in &self.0 {
            item.put(out);
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        // `length` checked that the input holds `len` elements of `T::MIN_BYTES` each, so the
        // allocation is bounded by the input (elements taking no bytes are zero-sized: no
        // allocation at all).
        let len = r.length("array", MAX, T::MIN_BYTES)?;
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(T::get(r)?);
        }
        Ok(List(items))
    }
}

/// A variable-length opaque `opaque<MAX>`: a length word, the bytes, zero padding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Opaque<const MAX: u32>(pub Vec<u8>);

impl<const MAX: u32> Opaque<MAX> {
    /// `bytes` as an opaque, if there are at most `MAX`.
    pub fn new(bytes: Vec<u8>) -> Result<Self, XdrError> {
        check_len("opaque", bytes.len(), MAX)?;
        Ok(Opaque(bytes))
    }
}

impl<const MAX: u32> Xdr for Opaque<MAX> {
    fn put(&self, out: &mut Vec<u8>) {
        debug_assert!(self.0.len() <= MAX as usize, "XDR opaque of {} exceeds its bound {MAX}", self.0.len());
        put_len(self.0.len(), out);
        put_padded(&self.0, out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        let len = r.length("opaque", MAX, 1)?;
        Ok(Opaque(r.padded(len)?.to_vec()))
    }
}

/// rpcgen's `char x<MAX>` holding a C string: a count then ONE WORD PER CHAR, the count including
/// the terminating NUL (`"ab"` is `00000003 00000061 00000062 00000000`). Encoding stops at the
/// first NUL of the string (where C would); decoding keeps the chars before the first NUL (none
/// need follow: a count of 0 is the empty string).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CharWords<const MAX: u32>(pub String);

impl<const MAX: u32> CharWords<MAX> {
    /// `text` as a char array, if it fits with its NUL in `MAX` chars.
    pub fn new(text: impl Into<String>) -> Result<Self, XdrError> {
        let text = text.into();
        check_len("char array", c_len(&text) + 1, MAX)?;
        Ok(CharWords(text))
    }
}

/// The bytes of `text` up to its first NUL.
fn c_bytes(text: &str) -> &[u8] {
    let bytes = text.as_bytes();
    &bytes[..c_len(text)]
}

fn c_len(text: &str) -> usize {
    text.bytes().position(|b| b == 0).unwrap_or(text.len())
}

/// The string of `bytes` up to their first NUL.
fn c_string(bytes: &[u8]) -> Result<String, XdrError> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8(bytes[..end].to_vec()).map_err(|_| XdrError::NotUtf8)
}

impl<const MAX: u32> Xdr for CharWords<MAX> {
    fn put(&self, out: &mut Vec<u8>) {
        let bytes = c_bytes(&self.0);
        debug_assert!(
            bytes.len() < MAX as usize,
            "XDR char array of {} exceeds its bound {MAX}",
            bytes.len() + 1
        );
        put_len(bytes.len() + 1, out);
        for &b in bytes {
            put_char(b, out);
        }
        put_char(0, out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        let len = r.length("char array", MAX, 4)?;
        let bytes = (0..len).map(|_| r.char_word()).collect::<Result<Vec<u8>, _>>()?;
        c_string(&bytes).map(CharWords)
    }
}

/// rpcgen's fixed `char x[N]`: N words, one per char, no count (`remote_node_get_info_ret.model`
/// is `char model[32]`, 128 bytes). Holds the raw chars, a C string NUL-padded.
#[derive(Clone, PartialEq, Eq)]
pub struct FixedChars<const N: usize>(pub [u8; N]);

impl<const N: usize> FixedChars<N> {
    /// `text` up to its first NUL, cut to N - 1 bytes (on a char boundary) so a NUL always ends
    /// it, then NUL-padded: what libvirt's fixed-size `char` buffers hold.
    pub fn from_text(text: &str) -> Self {
        let bytes = c_bytes(text);
        let mut end = bytes.len().min(N.saturating_sub(1));
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut chars = [0; N];
        chars[..end].copy_from_slice(&bytes[..end]);
        FixedChars(chars)
    }

    /// The chars before the first NUL, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(N);
        String::from_utf8_lossy(&self.0[..end]).into_owned()
    }
}

impl<const N: usize> Default for FixedChars<N> {
    fn default() -> Self {
        FixedChars([0; N])
    }
}

impl<const N: usize> fmt::Debug for FixedChars<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FixedChars({:?})", self.text())
    }
}

impl<const N: usize> Xdr for FixedChars<N> {
    const MIN_BYTES: usize = 4 * N;
    fn put(&self, out: &mut Vec<u8>) {
        for &b in &self.0 {
            put_char(b, out);
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, XdrError> {
        let left = r.remaining();
        if left < 4 * N {
            return Err(XdrError::Short { needed: 4 * N, left });
        }
        let mut chars = [0; N];
        for c in &mut chars {
            *c = r.char_word()?;
        }
        Ok(FixedChars(chars))
    }
}

/// Declares a struct whose XDR encoding is its fields in order, with `Debug, Clone, PartialEq, Eq,
/// Default` and [`Xdr`]; each field gets a generated doc line naming its wire type (after the
/// field's own doc comment, if any):
///
/// ```ignore
/// xdr_struct! {
///     /// remote_nonnull_domain.
///     pub struct NonnullDomain { pub name: String, pub uuid: [u8; 16], pub id: i32 }
/// }
/// ```
macro_rules! xdr_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$field_meta:meta])* $field_vis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        $vis struct $name {
            $(
                $(#[$field_meta])*
                #[doc = concat!("XDR `", stringify!($ty), "`.")]
                $field_vis $field: $ty,
            )*
        }

        impl $crate::native::xdr::Xdr for $name {
            const MIN_BYTES: usize = 0 $( + <$ty as $crate::native::xdr::Xdr>::MIN_BYTES )*;

            #[allow(unused_variables)]
            fn put(&self, out: &mut ::std::vec::Vec<u8>) {
                $( $crate::native::xdr::Xdr::put(&self.$field, out); )*
            }

            #[allow(unused_variables)]
            fn get(
                r: &mut $crate::native::xdr::Reader<'_>,
            ) -> ::std::result::Result<Self, $crate::native::xdr::XdrError> {
                ::std::result::Result::Ok($name {
                    $( $field: <$ty as $crate::native::xdr::Xdr>::get(r)?, )*
                })
            }
        }
    };
}
pub(crate) use xdr_struct;

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex"))
            .collect()
    }

    /// Encodes `v`, checks the bytes, decodes them back to `v`, and checks that every proper
    /// prefix fails to decode (without panicking).
    fn round_trip<T: Xdr + PartialEq + fmt::Debug>(v: T, expected_hex: &str) {
        let bytes = encode(&v);
        assert_eq!(hex(&bytes), hex(&unhex(expected_hex)), "encoding of {v:?}");
        assert_eq!(decode::<T>(&bytes).as_ref(), Ok(&v));
        every_prefix_fails::<T>(&bytes);
    }

    fn every_prefix_fails<T: Xdr + fmt::Debug>(bytes: &[u8]) {
        for cut in 0..bytes.len() {
            let result = decode::<T>(&bytes[..cut]);
            assert!(result.is_err(), "prefix of {cut} bytes decoded as {result:?}");
        }
    }

    xdr_struct! {
        /// A test struct.
        struct Sample {
            /// A name.
            name: String,
            uuid: [u8; 16],
            id: i32,
            big: u64,
            opt: Option<String>,
            flag: bool,
        }
    }

    xdr_struct! {
        /// Nothing at all.
        struct Empty {}
    }

    #[test]
    fn scalars() {
        round_trip(0x1234_5678u32, "12345678");
        round_trip(-1i32, "ffffffff");
        round_trip(0x0102_0304_0506_0708u64, "0102030405060708");
        round_trip(-2i64, "fffffffffffffffe");
        round_trip(true, "00000001");
        round_trip(false, "00000000");
        round_trip((), "");
        round_trip([0xab; 16], "abababababababababababababababab");
    }

    #[test]
    fn strings_are_padded() {
        round_trip(String::new(), "00000000");
        round_trip("y".to_string(), "00000001 79000000");
        round_trip("abcd".to_string(), "00000004 61626364");
        round_trip("abcde".to_string(), "00000005 6162636465000000");
        round_trip("test:///default".to_string(), "0000000f 746573743a2f2f2f64656661756c74 00");
    }

    #[test]
    fn optional() {
        round_trip(None::<String>, "00000000");
        round_trip(Some("y".to_string()), "00000001 00000001 79000000");
        // go-libvirt's CONNECT_OPEN: the word 0x01000000 says the name follows, as to libvirtd.
        assert_eq!(decode::<Option<String>>(&unhex("01000000 00000001 79000000")), Ok(Some("y".to_string())));
    }

    #[test]
    fn bools_are_zero_or_not() {
        assert_eq!(decode::<bool>(&unhex("00000000")), Ok(false));
        assert_eq!(decode::<bool>(&unhex("00000002")), Ok(true));
        assert_eq!(decode::<bool>(&unhex("ffffffff")), Ok(true));
    }

    #[test]
    fn non_zero_padding() {
        assert_eq!(decode::<String>(&unhex("00000001 79000100")), Err(XdrError::BadPadding));
        assert_eq!(decode::<Opaque<8>>(&unhex("00000003 01020304")), Err(XdrError::BadPadding));
    }

    #[test]
    fn not_utf8() {
        assert_eq!(decode::<String>(&unhex("00000001 ff000000")), Err(XdrError::NotUtf8));
    }

    #[test]
    fn trailing_bytes() {
        let err = decode::<u32>(&unhex("00000001 00000002")).unwrap_err();
        assert_eq!(err, XdrError::Trailing { left: 4 });
        assert_eq!(decode::<()>(&[0]), Err(XdrError::Trailing { left: 1 }));
    }

    #[test]
    fn oversized_string_is_refused_before_reading() {
        let err = decode::<String>(&unhex("004c4b40")).unwrap_err();
        assert_eq!(err, XdrError::TooLong { what: "string", len: 5_000_000, max: REMOTE_STRING_MAX });
        assert_eq!(err.to_string(), "string of 5000000 bytes exceeds the limit of 4194304");
        // Within the bound but longer than the input.
        assert_eq!(decode::<String>(&unhex("00001000 41")), Err(XdrError::Short { needed: 4096, left: 1 }));
    }

    #[test]
    fn lists() {
        round_trip(List::<i32, 20>(vec![]), "00000000");
        round_trip(List::<i32, 20>(vec![0, 2]), "00000002 00000000 00000002");
        round_trip(
            List::<String, 4>(vec!["a".into(), "bc".into()]),
            "00000002 00000001 61000000 00000002 62630000",
        );
        assert!(List::<i32, 2>::new(vec![1, 2]).is_ok());
        assert_eq!(
            List::<i32, 2>::new(vec![1, 2, 3]),
            Err(XdrError::TooLong { what: "array", len: 3, max: 2 })
        );
        let err = decode::<List<i32, 2>>(&unhex("00000003 00000001 00000002 00000003")).unwrap_err();
        assert_eq!(err, XdrError::TooLong { what: "array", len: 3, max: 2 });
        assert_eq!(err.to_string(), "array of 3 elements exceeds the limit of 2");
    }

    #[test]
    fn hostile_list_length_fails_fast() {
        // 16384 domains announced, 8 bytes present: refused on the length, nothing allocated.
        let bytes = unhex("00004000 00000001 79000000");
        assert_eq!(
            decode::<List<Sample, 16_384>>(&bytes),
            Err(XdrError::Short { needed: 16_384 * Sample::MIN_BYTES, left: 8 })
        );
        assert_eq!(decode::<List<u64, 16_384>>(&bytes), Err(XdrError::Short { needed: 16_384 * 8, left: 8 }));
        // Void elements take no bytes: only the bound limits them.
        assert_eq!(decode::<List<(), 3>>(&unhex("00000003")), Ok(List(vec![(), (), ()])));
        assert!(decode::<List<(), 3>>(&unhex("00000004")).is_err());
    }

    #[test]
    fn opaque() {
        round_trip(Opaque::<8>(vec![1, 2, 3]), "00000003 01020300");
        assert_eq!(Opaque::<2>::new(vec![0; 3]), Err(XdrError::TooLong { what: "opaque", len: 3, max: 2 }));
    }

    #[test]
    fn char_words_count_the_nul() {
        round_trip(
            CharWords::<257>("testSecurity".into()),
            "0000000d 00000074 00000065 00000073 00000074 00000053 00000065 00000063 00000075 \
             00000072 00000069 00000074 00000079 00000000",
        );
        round_trip(CharWords::<257>(String::new()), "00000001 00000000");
        // Bytes >= 0x80 are sign-extended, as a C client with a signed char sends them; both
        // forms decode.
        round_trip(CharWords::<8>("é".into()), "00000003 ffffffc3 ffffffa9 00000000");
        assert_eq!(decode::<CharWords<8>>(&unhex("00000002 000000c3 000000a9")), Ok(CharWords("é".into())));
        // A count of 0, and chars after the NUL, as C would read them.
        assert_eq!(decode::<CharWords<8>>(&unhex("00000000")), Ok(CharWords(String::new())));
        assert_eq!(
            decode::<CharWords<8>>(&unhex("00000003 00000061 00000000 00000062")),
            Ok(CharWords("a".into()))
        );
        assert_eq!(
            decode::<CharWords<8>>(&unhex("00000001 00000100")),
            Err(XdrError::BadChar { value: 0x100 })
        );
        assert!(CharWords::<3>::new("ab").is_ok());
        assert_eq!(CharWords::<3>::new("abc"), Err(XdrError::TooLong { what: "char array", len: 4, max: 3 }));
        assert_eq!(
            decode::<CharWords<3>>(&unhex("00000004")).unwrap_err().to_string(),
            "char array of 4 chars exceeds the limit of 3"
        );
    }

    #[test]
    fn fixed_chars() {
        let model = FixedChars::<4>::from_text("x86_64");
        assert_eq!(model.0, *b"x86\0");
        assert_eq!(model.text(), "x86");
        round_trip(model, "00000078 00000038 00000036 00000000");
        // Cut on a char boundary.
        assert_eq!(FixedChars::<4>::from_text("aé€").0, *b"a\xc3\xa9\0");
        assert_eq!(encode(&FixedChars::<32>::default()).len(), 128);
    }

    #[test]
    fn structs() {
        let v =
            Sample { name: "y".into(), uuid: [7; 16], id: -1, big: 5, opt: Some("ab".into()), flag: true };
        round_trip(
            v,
            "00000001 79000000 07070707070707070707070707070707 ffffffff 0000000000000005 \
             00000001 00000002 61620000 00000001",
        );
        assert_eq!(Sample::MIN_BYTES, 4 + 16 + 4 + 8 + 4 + 4);
        round_trip(Empty {}, "");
        assert_eq!(Empty::MIN_BYTES, 0);
    }

    #[test]
    fn reader() {
        let bytes = unhex("00000001 00000002");
        let mut r = Reader::new(&bytes);
        assert_eq!(r.word(), Ok(1));
        assert_eq!((r.position(), r.remaining(), r.rest()), (4, 4, &bytes[4..]));
        assert_eq!(r.clone().finish(), Err(XdrError::Trailing { left: 4 }));
        assert_eq!(r.take(5), Err(XdrError::Short { needed: 5, left: 4 }));
        assert_eq!(r.word(), Ok(2));
        assert_eq!(r.finish(), Ok(()));
    }
}
