//! The memcached text protocol, parsed incrementally from the bytes received so far.
//!
//! [`parse`] looks at the front of the buffer and says: a whole command (and how many bytes it
//! took), more bytes needed, or a bad request with memcached's own reply and how to resync
//! (drop the line; also swallow a data block that will not be stored; or discard up to the next
//! newline). It never panics and never allocates more than the request it returns.

use std::borrow::Cow;

/// The longest key memcached accepts.
pub(crate) const MAX_KEY_LEN: usize = 250;

/// Limits the parser enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ParseLimits {
    pub(crate) max_line: usize,
    pub(crate) max_value: usize,
}

/// One request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// `get`/`gets <key>*`.
    Get { keys: Vec<Vec<u8>>, cas: bool },
    /// `gat`/`gats <exptime> <key>*`.
    Gat {
        exptime: i64,
        keys: Vec<Vec<u8>>,
        cas: bool,
    },
    /// `set`, `add`, `replace`, `append`, `prepend`, `cas`.
    Store {
        mode: StoreMode,
        key: Vec<u8>,
        flags: u32,
        exptime: i64,
        data: Vec<u8>,
        noreply: bool,
    },
    /// `delete <key> [0] [noreply]`.
    Delete { key: Vec<u8>, noreply: bool },
    /// `incr`/`decr <key> <delta> [noreply]`.
    Arith {
        incr: bool,
        key: Vec<u8>,
        delta: u64,
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`.
    Touch {
        key: Vec<u8>,
        exptime: i64,
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`.
    FlushAll { delay: i64, noreply: bool },
    /// `version`.
    Version,
    /// `verbosity <level> [noreply]`.
    Verbosity { noreply: bool },
    /// `stats [group]`.
    Stats { group: Option<Vec<u8>> },
    /// `quit`.
    Quit,
}

/// How a storage command stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreMode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    /// Store only if the key's cas unique is this.
    Cas(u64),
}

/// What the front of the buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// More bytes are needed; `want` is the whole request's length when the line is known.
    Incomplete { want: Option<usize> },
    /// A request of `len` bytes.
    Command { cmd: Command, len: usize },
    /// A bad request: reply, drop `len` bytes, then swallow `swallow` more bytes (a data block
    /// that will not be stored) or, with `skip_line`, everything up to the next newline.
    Error {
        reply: Cow<'static, str>,
        len: usize,
        swallow: usize,
        skip_line: bool,
    },
}

pub(crate) const ERROR: &str = "ERROR";
const BAD_FORMAT: &str = "CLIENT_ERROR bad command line format";
const BAD_CHUNK: &str = "CLIENT_ERROR bad data chunk";
const TOO_LARGE: &str = "SERVER_ERROR object too large for cache";
const BAD_EXPTIME: &str = "CLIENT_ERROR invalid exptime argument";
const BAD_DELTA: &str = "CLIENT_ERROR invalid numeric delta argument";
const DELETE_USAGE: &str = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
const LINE_TOO_LONG: &str = "CLIENT_ERROR line too long";

fn error(reply: &'static str, len: usize) -> Parsed {
    Parsed::Error {
        reply: Cow::Borrowed(reply),
        len,
        swallow: 0,
        skip_line: false,
    }
}

/// Parse the request at the front of `buf`.
pub(crate) fn parse(buf: &[u8], limits: ParseLimits) -> Parsed {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        if buf.len() > limits.max_line {
            // No end of line in sight: drop what came and everything up to the next newline.
            return Parsed::Error {
                reply: Cow::Borrowed(LINE_TOO_LONG),
                len: buf.len(),
                swallow: 0,
                skip_line: true,
            };
        }
        return Parsed::Incomplete { want: None };
    };
    let len = nl + 1;
    if len > limits.max_line.saturating_add(1) {
        return error(LINE_TOO_LONG, len);
    }
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let tokens: Vec<&[u8]> = line
        .split(|&b| b == b' ')
        .filter(|t| !t.is_empty())
        .collect();
    let Some((&name, args)) = tokens.split_first() else {
        return error(ERROR, len);
    };
    match name {
        b"get" | b"gets" => match keys(args) {
            Ok(keys) if !keys.is_empty() => Parsed::Command {
                cmd: Command::Get {
                    keys,
                    cas: name == b"gets",
                },
                len,
            },
            Ok(_) => error(ERROR, len),
            Err(reply) => error(reply, len),
        },
        b"gat" | b"gats" => {
            let [exptime, keys_in @ ..] = args else {
                return error(ERROR, len);
            };
            if keys_in.is_empty() {
                return error(ERROR, len);
            }
            let Some(exptime) = number::<i64>(exptime) else {
                return error(BAD_EXPTIME, len);
            };
            match keys(keys_in) {
                Ok(keys) => Parsed::Command {
                    cmd: Command::Gat {
                        exptime,
                        keys,
                        cas: name == b"gats",
                    },
                    len,
                },
                Err(reply) => error(reply, len),
            }
        }
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => {
            storage(name, args, buf, len, limits)
        }
        b"delete" => {
            let (key, rest) = match args {
                [key, rest @ ..] if rest.len() <= 2 => (key, rest),
                _ => return error(ERROR, len),
            };
            let noreply = match rest {
                [] => false,
                [b"noreply"] => true,
                [b"0"] => false,
                [b"0", b"noreply"] => true,
                _ => return error(DELETE_USAGE, len),
            };
            match check_key(key) {
                Ok(()) => Parsed::Command {
                    cmd: Command::Delete {
                        key: key.to_vec(),
                        noreply,
                    },
                    len,
                },
                Err(reply) => error(reply, len),
            }
        }
        b"incr" | b"decr" => {
            let (key, delta, noreply) = match args {
                [key, delta] => (key, delta, false),
                [key, delta, last] => (key, delta, *last == b"noreply"),
                _ => return error(ERROR, len),
            };
            if let Err(reply) = check_key(key) {
                return error(reply, len);
            }
            let Some(delta) = number::<u64>(delta) else {
                return error(BAD_DELTA, len);
            };
            Parsed::Command {
                cmd: Command::Arith {
                    incr: name == b"incr",
                    key: key.to_vec(),
                    delta,
                    noreply,
                },
                len,
            }
        }
        b"touch" => {
            let (key, exptime, noreply) = match args {
                [key, exptime] => (key, exptime, false),
                [key, exptime, last] => (key, exptime, *last == b"noreply"),
                _ => return error(ERROR, len),
            };
            if let Err(reply) = check_key(key) {
                return error(reply, len);
            }
            let Some(exptime) = number::<i64>(exptime) else {
                return error(BAD_EXPTIME, len);
            };
            Parsed::Command {
                cmd: Command::Touch {
                    key: key.to_vec(),
                    exptime,
                    noreply,
                },
                len,
            }
        }
        b"flush_all" => {
            let (delay, noreply) = match args {
                [] => (None, false),
                [b"noreply"] => (None, true),
                [delay] => (Some(delay), false),
                [delay, last] => (Some(delay), *last == b"noreply"),
                _ => return error(ERROR, len),
            };
            let delay = match delay.map(|d| number::<i64>(d)) {
                None => 0,
                Some(Some(d)) => d,
                Some(None) => return error(BAD_EXPTIME, len),
            };
            Parsed::Command {
                cmd: Command::FlushAll { delay, noreply },
                len,
            }
        }
        b"version" => Parsed::Command {
            cmd: Command::Version,
            len,
        },
        b"verbosity" => match args {
            // memcached ignores the level, and takes a lone `noreply` as the flag.
            [only] => Parsed::Command {
                cmd: Command::Verbosity {
                    noreply: *only == b"noreply",
                },
                len,
            },
            [_, last] => Parsed::Command {
                cmd: Command::Verbosity {
                    noreply: *last == b"noreply",
                },
                len,
            },
            _ => error(ERROR, len),
        },
        b"stats" => match args {
            [] => Parsed::Command {
                cmd: Command::Stats { group: None },
                len,
            },
            [group] => Parsed::Command {
                cmd: Command::Stats {
                    group: Some(group.to_vec()),
                },
                len,
            },
            _ => error(ERROR, len),
        },
        b"quit" => Parsed::Command {
            cmd: Command::Quit,
            len,
        },
        b"shutdown" => error("ERROR: shutdown not enabled", len),
        _ => error(ERROR, len),
    }
}

/// `<cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]\r\n<data>\r\n`.
fn storage(name: &[u8], args: &[&[u8]], buf: &[u8], len: usize, limits: ParseLimits) -> Parsed {
    let is_cas = name == b"cas";
    let fixed = if is_cas { 5 } else { 4 };
    if args.len() != fixed && args.len() != fixed + 1 {
        return error(ERROR, len);
    }
    let noreply = args.len() == fixed + 1 && args[fixed] == b"noreply";
    let key = args[0];
    if let Err(reply) = check_key(key) {
        return error(reply, len);
    }
    let (Some(flags), Some(exptime), Some(bytes)) = (
        number::<u32>(args[1]),
        number::<i64>(args[2]),
        number::<i64>(args[3]),
    ) else {
        return error(BAD_FORMAT, len);
    };
    let Ok(bytes) = usize::try_from(bytes) else {
        return error(BAD_FORMAT, len);
    };
    if bytes > i32::MAX as usize - 2 {
        return error(BAD_FORMAT, len);
    }
    let mode = match name {
        b"set" => StoreMode::Set,
        b"add" => StoreMode::Add,
        b"replace" => StoreMode::Replace,
        b"append" => StoreMode::Append,
        b"prepend" => StoreMode::Prepend,
        _ => match number::<u64>(args[4]) {
            Some(unique) => StoreMode::Cas(unique),
            None => return error(BAD_FORMAT, len),
        },
    };
    if bytes > limits.max_value {
        return Parsed::Error {
            reply: Cow::Borrowed(TOO_LARGE),
            len,
            swallow: bytes + 2,
            skip_line: false,
        };
    }
    let total = len + bytes + 2;
    if buf.len() < total {
        return Parsed::Incomplete { want: Some(total) };
    }
    if &buf[len + bytes..total] != b"\r\n" {
        return error(BAD_CHUNK, total);
    }
    let data = buf[len..len + bytes].to_vec();
    Parsed::Command {
        cmd: Command::Store {
            mode,
            key: key.to_vec(),
            flags,
            exptime,
            data,
            noreply,
        },
        len: total,
    }
}

fn check_key(key: &[u8]) -> Result<(), &'static str> {
    if key.len() > MAX_KEY_LEN {
        Err(BAD_FORMAT)
    } else {
        Ok(())
    }
}

fn keys(args: &[&[u8]]) -> Result<Vec<Vec<u8>>, &'static str> {
    args.iter()
        .map(|k| check_key(k).map(|()| k.to_vec()))
        .collect()
}

/// A decimal number as memcached reads it (`strtol`-like, but whole-token and overflow-checked).
fn number<T: std::str::FromStr>(token: &[u8]) -> Option<T> {
    let text = std::str::from_utf8(token).ok()?;
    if text.starts_with('+') {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ParseLimits = ParseLimits {
        max_line: 2048,
        max_value: 1 << 20,
    };

    fn cmd(input: &[u8]) -> Command {
        match parse(input, LIMITS) {
            Parsed::Command { cmd, len } => {
                assert_eq!(len, input.len());
                cmd
            }
            other => panic!("{other:?}"),
        }
    }

    fn reply(input: &[u8]) -> String {
        match parse(input, LIMITS) {
            Parsed::Error { reply, .. } => reply.into_owned(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            cmd(b"get a b\r\n"),
            Command::Get {
                keys: vec![b"a".to_vec(), b"b".to_vec()],
                cas: false
            }
        );
        assert_eq!(
            cmd(b"  gets  a \n"),
            Command::Get {
                keys: vec![b"a".to_vec()],
                cas: true
            }
        );
        assert_eq!(
            cmd(b"cas k 5 -1 3 77 noreply\r\nabc\r\n"),
            Command::Store {
                mode: StoreMode::Cas(77),
                key: b"k".to_vec(),
                flags: 5,
                exptime: -1,
                data: b"abc".to_vec(),
                noreply: true
            }
        );
        assert_eq!(
            cmd(b"delete k 0 noreply\r\n"),
            Command::Delete {
                key: b"k".to_vec(),
                noreply: true
            }
        );
        assert_eq!(
            cmd(b"incr k 18446744073709551615\r\n"),
            Command::Arith {
                incr: true,
                key: b"k".to_vec(),
                delta: u64::MAX,
                noreply: false
            }
        );
        assert_eq!(
            cmd(b"flush_all 10 noreply\r\n"),
            Command::FlushAll {
                delay: 10,
                noreply: true
            }
        );
        assert_eq!(
            cmd(b"gat 100 a\r\n"),
            Command::Gat {
                exptime: 100,
                keys: vec![b"a".to_vec()],
                cas: false
            }
        );
    }

    #[test]
    fn errors_are_memcacheds() {
        assert_eq!(reply(b"\r\n"), "ERROR");
        assert_eq!(reply(b"get\r\n"), "ERROR");
        assert_eq!(reply(b"GET a\r\n"), "ERROR");
        assert_eq!(reply(b"set a 0 0\r\n"), "ERROR");
        assert_eq!(
            reply(b"set a x 0 1\r\n"),
            "CLIENT_ERROR bad command line format"
        );
        assert_eq!(
            reply(b"set a 0 0 -1\r\n"),
            "CLIENT_ERROR bad command line format"
        );
        assert_eq!(
            reply(b"set a 0 0 3\r\nabcd\r\n"),
            "CLIENT_ERROR bad data chunk"
        );
        assert_eq!(
            reply(b"incr a x\r\n"),
            "CLIENT_ERROR invalid numeric delta argument"
        );
        assert_eq!(
            reply(b"touch a x\r\n"),
            "CLIENT_ERROR invalid exptime argument"
        );
        assert_eq!(reply(b"delete a 5\r\n"), DELETE_USAGE);
        let long = format!("get {}\r\n", "k".repeat(251));
        assert_eq!(
            reply(long.as_bytes()),
            "CLIENT_ERROR bad command line format"
        );
        match parse(b"set a 0 0 2000000\r\n", LIMITS) {
            Parsed::Error {
                reply,
                len,
                swallow,
                ..
            } => assert_eq!((&*reply, len, swallow), (TOO_LARGE, 19, 2_000_002)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn partial_input_waits() {
        assert_eq!(parse(b"get a", LIMITS), Parsed::Incomplete { want: None });
        assert_eq!(
            parse(b"set a 0 0 5\r\nab", LIMITS),
            Parsed::Incomplete { want: Some(20) }
        );
        match parse(&[b'x'; 3000], LIMITS) {
            Parsed::Error {
                skip_line: true,
                len: 3000,
                ..
            } => {}
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2048, failure_persistence: None, ..Default::default() })]

        /// Random bytes never panic, never claim more bytes than given, and every error is one
        /// of memcached's replies.
        #[test]
        fn random_bytes(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            check(&input);
        }

        /// Random command lines built from real command names and odd arguments.
        #[test]
        fn random_command_lines(
            name in proptest::sample::select(vec!["get", "gets", "gat", "gats", "set", "add", "replace", "append", "prepend", "cas", "delete", "incr", "decr", "touch", "flush_all", "version", "verbosity", "stats", "quit", "shutdown", "bogus", ""]),
            args in proptest::collection::vec("[-+]?[0-9]{0,22}|noreply|[a-z]{1,5}|[ -~]{0,12}|k{249,252}", 0..7),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let mut input = format!("{name} {}\r\n", args.join(" ")).into_bytes();
            input.extend_from_slice(&tail);
            check(&input);
        }
    }

    fn check(input: &[u8]) {
        let limits = ParseLimits {
            max_line: 256,
            max_value: 64,
        };
        let mut rest = input;
        // Parse as a connection would, to the end of the input.
        while !rest.is_empty() {
            match parse(rest, limits) {
                Parsed::Incomplete { want } => {
                    assert!(want.is_none_or(|w| w > rest.len()));
                    break;
                }
                Parsed::Command { len, .. } => {
                    assert!(len > 0 && len <= rest.len());
                    rest = &rest[len..];
                }
                Parsed::Error {
                    reply,
                    len,
                    swallow,
                    skip_line,
                } => {
                    assert!(len > 0 && len <= rest.len());
                    assert!(
                        reply == "ERROR"
                            || reply.starts_with("CLIENT_ERROR ")
                            || reply.starts_with("SERVER_ERROR ")
                            || reply == "ERROR: shutdown not enabled",
                        "{reply}"
                    );
                    assert!(!reply.contains('\n') && !reply.contains('\r'));
                    rest = &rest[len..];
                    rest = &rest[swallow.min(rest.len())..];
                    if skip_line {
                        rest = memchr::memchr(b'\n', rest).map_or(&[][..], |i| &rest[i + 1..]);
                    }
                }
            }
        }
    }
}
