//! AMF0: the Action Message Format values carried by RTMP commands and data
//! messages. Decoding is bounded: nesting depth is limited, every length is
//! checked against the bytes actually present before anything is allocated,
//! nothing is reserved on a declared count, and one message may hold at most
//! [`MAX_VALUES`] values (a value takes 48 bytes decoded, so a message of
//! one-byte nulls would otherwise cost 48 times its size).

use std::fmt;

use byteorder::{BigEndian, ByteOrder};

/// Deepest nesting of objects and arrays accepted by [`decode_all`].
pub const MAX_DEPTH: usize = 32;
/// Most values, nested ones included, in one decoded message: far more
/// than any `connect` or `onMetaData` holds (tens), and at most about
/// 2 MiB decoded.
pub const MAX_VALUES: usize = 16 * 1024;
/// Elements reserved up front for an array, whatever count it declares.
const MAX_RESERVE: usize = 64;

mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const MOVIECLIP: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const REFERENCE: u8 = 0x07;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0A;
    pub const DATE: u8 = 0x0B;
    pub const LONG_STRING: u8 = 0x0C;
    pub const UNSUPPORTED: u8 = 0x0D;
    pub const XML_DOCUMENT: u8 = 0x0F;
    pub const TYPED_OBJECT: u8 = 0x10;
    pub const AVMPLUS: u8 = 0x11;
}

/// One AMF0 value. Object-like values keep their properties in wire order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Boolean(bool),
    String(String),
    Object(Vec<(String, Value)>),
    Null,
    Undefined,
    /// Index into the table of objects already decoded in this message.
    Reference(u16),
    EcmaArray(Vec<(String, Value)>),
    StrictArray(Vec<Value>),
    /// Milliseconds since the Unix epoch, and a (deprecated) time zone.
    Date {
        millis: f64,
        time_zone: i16,
    },
    LongString(String),
    XmlDocument(String),
    TypedObject {
        class_name: String,
        properties: Vec<(String, Value)>,
    },
    /// The `unsupported` marker: a value the sender could not serialize.
    Unsupported,
}

/// Why a byte sequence is not valid AMF0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Amf0Error {
    /// The input ended inside a value.
    Truncated,
    /// A type marker this decoder does not know.
    UnknownMarker(u8),
    /// Objects and arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A marker that AMF0 reserves (movieclip, recordset) or AMF3 values
    /// embedded through the AVM+ switch.
    Unsupported(u8),
    /// More than [`MAX_VALUES`] values in one message.
    TooManyValues,
}

impl fmt::Display for Amf0Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amf0Error::Truncated => write!(f, "AMF0 value truncated"),
            Amf0Error::UnknownMarker(m) => write!(f, "unknown AMF0 marker 0x{m:02x}"),
            Amf0Error::TooDeep => write!(f, "AMF0 nesting deeper than {MAX_DEPTH}"),
            Amf0Error::Unsupported(m) => write!(f, "unsupported AMF0 marker 0x{m:02x}"),
            Amf0Error::TooManyValues => write!(f, "more than {MAX_VALUES} AMF0 values"),
        }
    }
}

impl std::error::Error for Amf0Error {}

impl Value {
    /// The string inside a `String` or `LongString`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::LongString(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            Value::Number(n) => Some(*n != 0.0),
            _ => None,
        }
    }

    /// The properties of an object, ECMA array or typed object.
    pub fn properties(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(p) | Value::EcmaArray(p) => Some(p),
            Value::TypedObject { properties, .. } => Some(properties),
            _ => None,
        }
    }

    /// Looks up a property of an object-like value by name.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Builds an object from `(&str, Value)` pairs.
    pub fn object<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
}

/// Decodes every value in `input`.
pub fn decode_all(input: &[u8]) -> Result<Vec<Value>, Amf0Error> {
    let mut reader = Reader::new(input);
    let mut values = Vec::new();
    while reader.pos < input.len() {
        values.push(reader.value(0)?);
    }
    Ok(values)
}

/// Decodes the first value of `input`, returning it and the bytes consumed.
pub fn decode_one(input: &[u8]) -> Result<(Value, usize), Amf0Error> {
    let mut reader = Reader::new(input);
    let value = reader.value(0)?;
    Ok((value, reader.pos))
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Values that may still be decoded.
    budget: usize,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Self {
        Reader {
            input,
            pos: 0,
            budget: MAX_VALUES,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        let end = self.pos.checked_add(n).ok_or(Amf0Error::Truncated)?;
        let bytes = self.input.get(self.pos..end).ok_or(Amf0Error::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        Ok(BigEndian::read_u16(self.take(2)?))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        Ok(BigEndian::read_u32(self.take(4)?))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        Ok(BigEndian::read_f64(self.take(8)?))
    }

    fn utf8(&mut self, len: usize) -> Result<String, Amf0Error> {
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn short_string(&mut self) -> Result<String, Amf0Error> {
        let len = self.u16()? as usize;
        self.utf8(len)
    }

    fn long_string(&mut self) -> Result<String, Amf0Error> {
        let len = self.u32()? as usize;
        self.utf8(len)
    }

    fn value(&mut self, depth: usize) -> Result<Value, Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
        self.budget = self.budget.checked_sub(1).ok_or(Amf0Error::TooManyValues)?;
        let m = self.u8()?;
        Ok(match m {
            marker::NUMBER => Value::Number(self.f64()?),
            marker::BOOLEAN => Value::Boolean(self.u8()? != 0),
            marker::STRING => Value::String(self.short_string()?),
            marker::OBJECT => Value::Object(self.properties(depth)?),
            marker::NULL => Value::Null,
            marker::UNDEFINED => Value::Undefined,
            marker::REFERENCE => Value::Reference(self.u16()?),
            marker::ECMA_ARRAY => {
                // The count is only a hint; the properties end with the
                // object-end marker like an object's.
                let _count = self.u32()?;
                Value::EcmaArray(self.properties(depth)?)
            }
            marker::STRICT_ARRAY => {
                let count = self.u32()? as usize;
                // The count is the sender's claim: reserve a little and let
                // the elements that really come grow the array.
                let mut items = Vec::with_capacity(count.min(MAX_RESERVE));
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = self.f64()?;
                let time_zone = self.u16()? as i16;
                Value::Date { millis, time_zone }
            }
            marker::LONG_STRING => Value::LongString(self.long_string()?),
            marker::XML_DOCUMENT => Value::XmlDocument(self.long_string()?),
            marker::TYPED_OBJECT => {
                let class_name = self.short_string()?;
                Value::TypedObject {
                    class_name,
                    properties: self.properties(depth)?,
                }
            }
            marker::UNSUPPORTED => Value::Unsupported,
            marker::MOVIECLIP | marker::AVMPLUS | 0x0E => return Err(Amf0Error::Unsupported(m)),
            other => return Err(Amf0Error::UnknownMarker(other)),
        })
    }

    /// Reads `name, value` pairs up to the empty name and object-end marker.
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Value)>, Amf0Error> {
        let mut props = Vec::new();
        loop {
            let key = self.short_string()?;
            if key.is_empty() && self.input.get(self.pos) == Some(&marker::OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let value = self.value(depth + 1)?;
            props.push((key, value));
        }
    }
}

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Number(n) => {
            out.push(marker::NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Boolean(b) => out.extend_from_slice(&[marker::BOOLEAN, u8::from(*b)]),
        Value::String(s) => {
            if s.len() > u16::MAX as usize {
                out.push(marker::LONG_STRING);
                put_long_string(s, out);
            } else {
                out.push(marker::STRING);
                put_short_string(s, out);
            }
        }
        Value::Object(props) => {
            out.push(marker::OBJECT);
            put_properties(props, out);
        }
        Value::Null => out.push(marker::NULL),
        Value::Undefined => out.push(marker::UNDEFINED),
        Value::Reference(index) => {
            out.push(marker::REFERENCE);
            out.extend_from_slice(&index.to_be_bytes());
        }
        Value::EcmaArray(props) => {
            out.push(marker::ECMA_ARRAY);
            let count = u32::try_from(props.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&count.to_be_bytes());
            put_properties(props, out);
        }
        Value::StrictArray(items) => {
            out.push(marker::STRICT_ARRAY);
            let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&count.to_be_bytes());
            for item in items {
                encode(item, out);
            }
        }
        Value::Date { millis, time_zone } => {
            out.push(marker::DATE);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&time_zone.to_be_bytes());
        }
        Value::LongString(s) => {
            out.push(marker::LONG_STRING);
            put_long_string(s, out);
        }
        Value::XmlDocument(s) => {
            out.push(marker::XML_DOCUMENT);
            put_long_string(s, out);
        }
        Value::TypedObject {
            class_name,
            properties,
        } => {
            out.push(marker::TYPED_OBJECT);
            put_short_string(class_name, out);
            put_properties(properties, out);
        }
        Value::Unsupported => out.push(marker::UNSUPPORTED),
    }
}

/// Encodes a sequence of values into a new buffer.
pub fn encode_all(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        encode(value, &mut out);
    }
    out
}

fn put_short_string(s: &str, out: &mut Vec<u8>) {
    // Property names and short strings longer than 64 KiB cannot be
    // represented; truncate at a character boundary rather than corrupt.
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

fn put_long_string(s: &str, out: &mut Vec<u8>) {
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

fn put_properties(props: &[(String, Value)], out: &mut Vec<u8>) {
    for (key, value) in props {
        put_short_string(key, out);
        encode(value, out);
    }
    out.extend_from_slice(&[0, 0, marker::OBJECT_END]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_type() -> Vec<Value> {
        vec![
            Value::Number(1.5),
            Value::Boolean(true),
            Value::string("connect"),
            Value::object([
                ("app", Value::string("live")),
                ("nested", Value::object([("x", Value::Null)])),
            ]),
            Value::Null,
            Value::Undefined,
            Value::Reference(3),
            Value::EcmaArray(vec![("duration".into(), Value::Number(0.0))]),
            Value::StrictArray(vec![Value::Number(1.0), Value::string("a")]),
            Value::Date {
                millis: 1.7e12,
                time_zone: -60,
            },
            Value::LongString("long".into()),
            Value::XmlDocument("<a/>".into()),
            Value::TypedObject {
                class_name: "Point".into(),
                properties: vec![("x".into(), Value::Number(2.0))],
            },
            Value::Unsupported,
        ]
    }

    #[test]
    fn every_type_round_trips() {
        let values = every_type();
        let bytes = encode_all(&values);
        assert_eq!(decode_all(&bytes).unwrap(), values);
    }

    #[test]
    fn every_proper_prefix_is_truncated_not_a_panic() {
        for value in every_type() {
            let bytes = encode_all(std::slice::from_ref(&value));
            for len in 0..bytes.len() {
                assert!(
                    decode_one(&bytes[..len]).is_err(),
                    "prefix {len} of {value:?} decoded"
                );
            }
        }
    }

    #[test]
    fn decodes_known_connect_bytes() {
        // "connect", 1.0, {app: "live"} as sent by ffmpeg.
        let bytes = [
            0x02, 0x00, 0x07, b'c', b'o', b'n', b'n', b'e', b'c', b't', 0x00, 0x3f, 0xf0, 0, 0, 0,
            0, 0, 0, 0x03, 0x00, 0x03, b'a', b'p', b'p', 0x02, 0x00, 0x04, b'l', b'i', b'v', b'e',
            0x00, 0x00, 0x09,
        ];
        let values = decode_all(&bytes).unwrap();
        assert_eq!(values[0].as_str(), Some("connect"));
        assert_eq!(values[1].as_number(), Some(1.0));
        assert_eq!(values[2].get("app").and_then(Value::as_str), Some("live"));
    }

    #[test]
    fn deep_nesting_is_rejected_without_stack_overflow() {
        let mut bytes = Vec::new();
        for _ in 0..100_000 {
            bytes.extend_from_slice(&[marker::OBJECT, 0, 1, b'a']);
        }
        assert_eq!(decode_all(&bytes), Err(Amf0Error::TooDeep));
        let mut arrays = Vec::new();
        for _ in 0..100_000 {
            arrays.extend_from_slice(&[marker::STRICT_ARRAY, 0, 0, 0, 1]);
        }
        assert_eq!(decode_all(&arrays), Err(Amf0Error::TooDeep));
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted() {
        let mut value = Value::Null;
        for _ in 0..MAX_DEPTH {
            value = Value::StrictArray(vec![value]);
        }
        let bytes = encode_all(std::slice::from_ref(&value));
        assert_eq!(decode_all(&bytes).unwrap(), vec![value]);
    }

    #[test]
    fn huge_declared_lengths_fail_without_allocating() {
        // Strict array claiming 4 billion elements, long string claiming 4 GB.
        assert_eq!(
            decode_all(&[marker::STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff]),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(
            decode_all(&[marker::LONG_STRING, 0xff, 0xff, 0xff, 0xff, b'a']),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(
            decode_all(&[marker::STRING, 0x10, 0x00, b'a']),
            Err(Amf0Error::Truncated)
        );
    }

    #[test]
    fn values_per_message_are_bounded() {
        // A 256 KiB message of one-byte nulls would be 12 MiB decoded.
        let nulls = vec![marker::NULL; 256 * 1024];
        assert_eq!(decode_all(&nulls), Err(Amf0Error::TooManyValues));
        assert_eq!(decode_all(&nulls[..MAX_VALUES]).unwrap().len(), MAX_VALUES);
        // Nested values count too.
        let mut array = vec![marker::STRICT_ARRAY];
        array.extend_from_slice(&(MAX_VALUES as u32).to_be_bytes());
        array.extend(std::iter::repeat_n(marker::NULL, MAX_VALUES));
        assert_eq!(decode_all(&array), Err(Amf0Error::TooManyValues));
    }

    #[test]
    fn a_declared_count_reserves_nothing_large() {
        // 2^32-1 elements declared, then a few: an error, fast and small.
        let mut bytes = vec![marker::STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff];
        bytes.extend(std::iter::repeat_n(marker::NULL, 100_000));
        assert_eq!(decode_all(&bytes), Err(Amf0Error::TooManyValues));
        let mut short = vec![marker::STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff];
        short.extend([marker::NULL; 10]);
        assert_eq!(decode_all(&short), Err(Amf0Error::Truncated));
    }

    #[test]
    fn ecma_array_count_is_only_a_hint() {
        // Count says 5, one property follows: still fine (ffmpeg writes
        // accurate counts, some encoders write 0).
        let mut bytes = vec![marker::ECMA_ARRAY, 0, 0, 0, 5, 0, 1, b'w'];
        encode(&Value::Number(640.0), &mut bytes);
        bytes.extend_from_slice(&[0, 0, marker::OBJECT_END]);
        let v = decode_all(&bytes).unwrap();
        assert_eq!(v[0].get("w").and_then(Value::as_number), Some(640.0));
    }

    #[test]
    fn unknown_and_amf3_markers_are_errors() {
        assert_eq!(decode_all(&[0x42]), Err(Amf0Error::UnknownMarker(0x42)));
        assert_eq!(
            decode_all(&[marker::AVMPLUS, 0x01]),
            Err(Amf0Error::Unsupported(marker::AVMPLUS))
        );
    }

    #[test]
    fn long_strings_encode_with_the_long_marker() {
        let s = "x".repeat(70_000);
        let bytes = encode_all(&[Value::String(s.clone())]);
        assert_eq!(bytes[0], marker::LONG_STRING);
        assert_eq!(decode_all(&bytes).unwrap(), vec![Value::LongString(s)]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let v = decode_all(&[marker::STRING, 0, 2, 0xff, b'a']).unwrap();
        assert_eq!(v[0].as_str(), Some("\u{fffd}a"));
    }
}
