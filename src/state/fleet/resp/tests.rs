use super::*;

fn bulk(b: &[u8]) -> Value {
    Value::BulkString(b.to_vec())
}

fn status(s: &str) -> Value {
    Value::SimpleString(s.to_owned())
}

#[test]
fn commands_are_arrays_of_bulk_strings() {
    assert_eq!(
        &Command::new("GET").arg("k").encode()[..],
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    );
    assert_eq!(&Command::new("EXEC").encode()[..], b"*1\r\n$4\r\nEXEC\r\n");
    let key = b"pam-totp:a\r\nb".to_vec();
    assert_eq!(
        &Command::new("SET").arg(&key).arg(b"").encode()[..],
        b"*3\r\n$3\r\nSET\r\n$13\r\npam-totp:a\r\nb\r\n$0\r\n\r\n"
    );
    assert_eq!(
        &Command::new("SCAN")
            .arg(&b"0"[..])
            .arg("COUNT")
            .arg(1000u32)
            .encode()[..],
        b"*4\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nCOUNT\r\n$4\r\n1000\r\n"
    );
    assert_eq!(
        &Command::new("SELECT").arg(15u32).encode()[..],
        b"*2\r\n$6\r\nSELECT\r\n$2\r\n15\r\n"
    );
    assert_eq!(
        &Command::new("X")
            .arg(-3i64)
            .arg(7u64)
            .arg(8usize)
            .arg(9u16)
            .encode()[..],
        b"*5\r\n$1\r\nX\r\n$2\r\n-3\r\n$1\r\n7\r\n$1\r\n8\r\n$1\r\n9\r\n"
    );
}

#[test]
fn commands_pack_one_after_another_and_hide_their_arguments() {
    let auth = Command::new("AUTH").arg("u").arg("p w");
    let mut out = Zeroizing::new(Vec::new());
    auth.encode_into(&mut out);
    Command::new("PING").encode_into(&mut out);
    assert_eq!(
        &out[..],
        b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$3\r\np w\r\n*1\r\n$4\r\nPING\r\n"
    );
    assert_eq!(format!("{auth:?}"), "Command { args: 3 }");
}

/// A long argument moves through several buffers, each wiped when
/// dropped; the result is the same bytes.
#[test]
fn a_long_argument_encodes_whole() {
    let long = vec![b'p'; 10_000];
    let packed = Command::new("AUTH").arg("u").arg(&long).encode();
    let mut want = b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$10000\r\n".to_vec();
    want.extend_from_slice(&long);
    want.extend_from_slice(b"\r\n");
    assert_eq!(&packed[..], &want[..]);
}

/// Every reply type, each taking exactly its own bytes.
fn samples() -> Vec<(&'static [u8], Value)> {
    vec![
        (b"+OK\r\n", status("OK")),
        (b"+\r\n", status("")),
        (
            b"-NOPERM no way\r\n",
            Value::Error(ServerError("NOPERM no way".into())),
        ),
        (b":0\r\n", Value::Int(0)),
        (b":-42\r\n", Value::Int(-42)),
        (b":9223372036854775807\r\n", Value::Int(i64::MAX)),
        (b":-9223372036854775808\r\n", Value::Int(i64::MIN)),
        (b"$0\r\n\r\n", bulk(b"")),
        (b"$5\r\na\r\nb\x00\r\n", bulk(b"a\r\nb\x00")),
        (b"$-1\r\n", Value::Nil),
        (b"*-1\r\n", Value::Nil),
        (b"*0\r\n", Value::Array(vec![])),
        (
            b"*2\r\n$2\r\n17\r\n*2\r\n$3\r\nk:a\r\n$-1\r\n",
            Value::Array(vec![
                bulk(b"17"),
                Value::Array(vec![bulk(b"k:a"), Value::Nil]),
            ]),
        ),
        (
            b"*3\r\n+OK\r\n:1\r\n-ERR x\r\n",
            Value::Array(vec![
                status("OK"),
                Value::Int(1),
                Value::Error(ServerError("ERR x".into())),
            ]),
        ),
    ]
}

#[test]
fn every_reply_type_parses() {
    for (bytes, want) in samples() {
        assert_eq!(parse(bytes), Ok(Some((want, bytes.len()))), "{bytes:?}");
    }
}

#[test]
fn a_reply_cut_anywhere_waits_for_the_rest() {
    for (bytes, want) in samples() {
        for cut in 0..bytes.len() {
            assert_eq!(parse(&bytes[..cut]), Ok(None), "{bytes:?} cut at {cut}");
        }
        assert_eq!(parse(bytes), Ok(Some((want, bytes.len()))));
    }
}

#[test]
fn replies_back_to_back_are_read_one_at_a_time() {
    let both = b"+QUEUED\r\n*1\r\n+OK\r\n:3";
    let (first, used) = parse(both).unwrap().unwrap();
    assert_eq!((first, used), (status("QUEUED"), 9));
    let (second, used2) = parse(&both[used..]).unwrap().unwrap();
    assert_eq!(second, Value::Array(vec![status("OK")]));
    assert_eq!(used + used2, both.len() - 2);
    assert_eq!(parse(&both[used + used2..]), Ok(None));
}

#[test]
fn error_replies_split_into_code_and_detail() {
    let e = ServerError("WRONGPASS invalid username-password pair".into());
    assert_eq!(e.code(), "WRONGPASS");
    assert_eq!(e.detail(), "invalid username-password pair");
    let bare = ServerError("ERR".into());
    assert_eq!((bare.code(), bare.detail()), ("ERR", ""));
}

#[test]
fn malformed_replies_are_errors() {
    let bad: &[(&[u8], RespError)] = &[
        (b"!3\r\n", RespError::BadType(b'!')),
        (b"%1\r\n", RespError::BadType(b'%')),
        (b"\r\n", RespError::BadType(b'\r')),
        (b"+OK\n", RespError::BadTerminator),
        (b"+O\rK\r\n", RespError::BadTerminator),
        (b":1\n\r\n", RespError::BadTerminator),
        (b"$3\r\nabcd\r\n", RespError::BadTerminator),
        (b"$3\r\nab\r\n\r\n", RespError::BadTerminator),
        (b"$3\r\nabc\n\r", RespError::BadTerminator),
        (b"*1\r\n$1\r\nab\r\n", RespError::BadTerminator),
        (b"$-2\r\n", RespError::BadNumber),
        (b"*-5\r\n", RespError::BadNumber),
        (b"$\r\n", RespError::BadNumber),
        (b":\r\n", RespError::BadNumber),
        (b":-\r\n", RespError::BadNumber),
        (b":+1\r\n", RespError::BadNumber),
        (b":1 \r\n", RespError::BadNumber),
        (b"$1x\r\n", RespError::BadNumber),
        (b":9223372036854775808\r\n", RespError::BadNumber),
        (b":-9223372036854775809\r\n", RespError::BadNumber),
        (b":00000000000000000001\r\n", RespError::BadNumber),
        (b"*1\r\n!\r\n", RespError::BadType(b'!')),
    ];
    for (bytes, want) in bad {
        assert_eq!(parse(bytes).as_ref(), Err(want), "{bytes:?}");
    }
}

/// Lengths and counts larger than a reply can be are refused at once;
/// smaller ones wait for their bytes (tests/resp_allocation.rs shows that
/// waiting allocates nothing ahead of them).
#[test]
fn lengths_beyond_the_cap_are_refused_and_below_it_wait() {
    let over = MAX_REPLY_BYTES + 1;
    assert_eq!(
        parse(format!("${over}\r\n").as_bytes()),
        Err(RespError::TooLarge(over))
    );
    assert_eq!(
        parse(b"*2147483647\r\n"),
        Err(RespError::TooLarge(2147483647))
    );
    assert_eq!(
        parse(b"$9223372036854775807\r\nabc"),
        Err(RespError::TooLarge(usize::MAX >> 1))
    );
    assert_eq!(
        parse(format!("${MAX_REPLY_BYTES}\r\nabc").as_bytes()),
        Ok(None)
    );
    let most = MAX_REPLY_BYTES / 3;
    assert_eq!(parse(format!("*{most}\r\n:1\r\n").as_bytes()), Ok(None));
    assert_eq!(
        parse(format!("*{}\r\n", most + 1).as_bytes()),
        Err(RespError::TooLarge(most + 1))
    );
    assert!(RespError::TooLarge(over).to_string().contains("bytes"));
}

fn nested(levels: usize) -> Vec<u8> {
    let mut bytes = b"*1\r\n".repeat(levels);
    bytes.extend_from_slice(b":1\r\n");
    bytes
}

#[test]
fn nesting_is_bounded() {
    let mut want = Value::Int(1);
    for _ in 0..MAX_DEPTH {
        want = Value::Array(vec![want]);
    }
    let deepest = nested(MAX_DEPTH);
    assert_eq!(parse(&deepest), Ok(Some((want, deepest.len()))));
    assert_eq!(parse(&nested(MAX_DEPTH + 1)), Err(RespError::TooDeep));
    assert_eq!(parse(&b"*1\r\n".repeat(1000)), Err(RespError::TooDeep));
    // Even an empty or nil array one level too deep.
    let mut empty = b"*1\r\n".repeat(MAX_DEPTH);
    empty.extend_from_slice(b"*-1\r\n");
    assert_eq!(parse(&empty), Err(RespError::TooDeep));
}

#[test]
fn text_that_is_not_utf8_is_replaced_not_refused() {
    assert_eq!(
        parse(b"-ERR \xff\r\n"),
        Ok(Some((Value::Error(ServerError("ERR \u{fffd}".into())), 8)))
    );
}
