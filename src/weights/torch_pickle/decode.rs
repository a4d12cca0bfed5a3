//! Decoding of pickle literals: long integers, escaped strings, builtin names and opcode
//! names for error messages.

/// A little-endian two's-complement integer (LONG1/LONG4), `None` if it needs over 64 bits.
pub(super) fn decode_long(bytes: &[u8]) -> Option<i64> {
    let Some(&top) = bytes.last() else {
        return Some(0);
    };
    let negative = top & 0x80 != 0;
    let fill = if negative { 0xff } else { 0 };
    let (low, high) = bytes.split_at(bytes.len().min(8));
    if high.iter().any(|&b| b != fill) {
        return None;
    }
    let mut buf = [fill; 8];
    buf[..low.len()].copy_from_slice(low);
    let value = i64::from_le_bytes(buf);
    (value.is_negative() == negative).then_some(value)
}

/// Decodes the escapes of a Python 2 `repr` of a byte string (STRING opcode), quotes removed.
pub(super) fn unescape_string(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some((&c, tail)) = rest.split_first() {
        rest = tail;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let (&e, tail) = rest.split_first()?;
        rest = tail;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut value = u32::from(e - b'0');
                for _ in 0..2 {
                    match rest.split_first() {
                        Some((&d @ b'0'..=b'7', tail)) => {
                            value = value * 8 + u32::from(d - b'0');
                            rest = tail;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(value & 0xff).ok()?);
            }
            b'x' => {
                let (hex, tail) = rest.split_at_checked(2)?;
                rest = tail;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Decodes Python's `raw-unicode-escape` (UNICODE opcode): bytes are Latin-1 characters,
/// except `\uXXXX` and `\UXXXXXXXX` after an odd number of backslashes.
pub(super) fn decode_raw_unicode_escape(s: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut backslashes = 0usize;
    while let Some(&c) = s.get(i) {
        i += 1;
        let digits = match c {
            b'u' if backslashes % 2 == 1 => 4,
            b'U' if backslashes % 2 == 1 => 8,
            _ => {
                backslashes = if c == b'\\' { backslashes + 1 } else { 0 };
                out.push(char::from(c));
                continue;
            }
        };
        out.pop(); // the backslash that starts the escape
        backslashes = 0;
        let hex = std::str::from_utf8(s.get(i..i + digits)?).ok()?;
        i += digits;
        out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
    }
    Some(out)
}

pub(super) fn builtin(name: &str) -> (String, String) {
    ("builtins".to_owned(), name.to_owned())
}

/// The pickletools name of an opcode byte.
pub(super) fn opcode_name(op: u8) -> &'static str {
    match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "not a pickle opcode",
    }
}
