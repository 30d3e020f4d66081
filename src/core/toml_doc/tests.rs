use super::*;

/// Strings of every kind of character a value can hold.
fn awkward() -> Vec<String> {
    let mut all: Vec<String> = [
        "",
        "plain",
        "with \"quotes\"",
        "back\\slash\\",
        "\\\"",
        "'single'",
        "line\nbreak\r\n",
        "tab\there",
        "\u{0}\u{1}\u{1f}\u{7f}\u{80}\u{9f}",
        "é ü 漢字 🙂",
        "\u{feff}\u{200b}\u{2028}\u{2029}",
        "\"\"\"",
        "'''",
        "= [[keys]] # not a comment",
        "\\u0041 \\n",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    // Every character below U+0100, one string each.
    all.extend(
        (0u32..0x100)
            .filter_map(char::from_u32)
            .map(|c| c.to_string()),
    );
    all
}

#[test]
fn every_string_written_reads_back_as_itself() {
    for s in awkward() {
        let mut text = String::new();
        push_str_line(&mut text, "k", &s);
        push_strings_line(&mut text, "list", &[s.as_str(), "x", s.as_str()]);
        let doc = Doc::parse(&text).unwrap_or_else(|e| panic!("{s:?} -> {text:?}: {e:?}"));
        let t = doc.table().only(&["k", "list"]).unwrap();
        assert_eq!(t.str("k").unwrap(), Some(s.as_str()), "{text:?}");
        assert_eq!(
            t.secret("k").unwrap().as_deref().map(String::as_str),
            Some(s.as_str())
        );
        assert_eq!(
            t.strings("list").unwrap(),
            Some(vec![s.clone(), "x".to_owned(), s.clone()])
        );
    }
}

#[test]
fn integers_read_back_and_keep_to_their_range() {
    let mut text = String::new();
    push_int_line(&mut text, "max", u64::MAX);
    push_int_line(&mut text, "zero", 0);
    push_ints_line(&mut text, "list", &[0, 1, u64::MAX]);
    push_ints_line(&mut text, "none", &[]);
    let doc = Doc::parse(&text).unwrap();
    let t = doc.table();
    assert_eq!(t.int("max", 0..=u64::MAX).unwrap(), Some(u64::MAX));
    assert_eq!(t.int("zero", 0..=0).unwrap(), Some(0));
    assert_eq!(
        t.ints("list", 0..=u64::MAX).unwrap(),
        Some(vec![0, 1, u64::MAX])
    );
    assert_eq!(t.ints("none", 0..=0).unwrap(), Some(vec![]));
    assert_eq!(t.int("absent", 0..=0).unwrap(), None);
    let e = t.int("max", 0..=u64::from(u32::MAX)).unwrap_err();
    assert_eq!(e.problem, Problem::Invalid);
    assert_eq!(e.span, Some(6..26));
    // Other radixes and underscores are integers too.
    let doc = Doc::parse("a = 0x1F\nb = 0o17\nc = 0b101\nd = 1_000\ne = +7\n").unwrap();
    let got: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|k| doc.table().int(k, 0..=u64::MAX).unwrap().unwrap())
        .collect();
    assert_eq!(got, [31, 15, 5, 1000, 7]);
}

#[test]
fn wrong_types_out_of_range_and_unknown_keys_say_where() {
    let text = "n = -1\ns = 5\nf = 1.5\nb = \"true\"\nl = [1, \"x\"]\nt = [[1]]\nd = 2030-01-01\n";
    let doc = Doc::parse(text).unwrap();
    let t = doc.table();
    let at = |e: DocError| (e.problem, e.span.map(|s| &text[s]));
    assert_eq!(
        at(t.int("n", 0..=9).unwrap_err()),
        (Problem::Invalid, Some("-1"))
    );
    assert_eq!(at(t.str("s").unwrap_err()), (Problem::WrongType, Some("5")));
    assert_eq!(
        at(t.int("f", 0..=9).unwrap_err()),
        (Problem::WrongType, Some("1.5"))
    );
    assert_eq!(
        at(t.int("d", 0..=9).unwrap_err()),
        (Problem::WrongType, Some("2030-01-01"))
    );
    assert_eq!(
        at(t.bool("b").unwrap_err()),
        (Problem::WrongType, Some("\"true\""))
    );
    assert_eq!(
        at(t.ints("l", 0..=9).unwrap_err()),
        (Problem::WrongType, Some("\"x\""))
    );
    assert_eq!(
        at(t.strings("s").unwrap_err()),
        (Problem::WrongType, Some("5"))
    );
    assert_eq!(
        at(t.tables("t").unwrap_err()),
        (Problem::WrongType, Some("[1]"))
    );
    assert_eq!(
        at(t.secret("l").unwrap_err()),
        (Problem::WrongType, Some("[1, \"x\"]"))
    );
    let e = t.only(&["n", "s", "f", "l", "t", "d"]).unwrap_err();
    assert_eq!(at(e), (Problem::UnknownKey, Some("b")));
    assert!(t.only(&["n", "s", "f", "b", "l", "t", "d"]).is_ok());
    assert_eq!(
        required(t.str("absent").unwrap(), "absent").unwrap_err(),
        DocError {
            problem: Problem::Missing("absent"),
            span: None
        }
    );
}

#[test]
fn tables_of_an_array_are_read_and_checked_each() {
    let text = "top = 1\n\n[[keys]]\nname = \"a\"\n\n[[keys]]\nname = \"b\"\nextra = 2\n";
    let doc = Doc::parse(text).unwrap();
    let keys = doc.table().tables("keys").unwrap().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys[0].only(&["name"]).unwrap().str("name").unwrap(),
        Some("a")
    );
    let e = keys[1].only(&["name"]).unwrap_err();
    assert_eq!(e.span.map(|s| &text[s]), Some("extra"));
    // A plain table is not an array of tables.
    let doc = Doc::parse("[keys]\nname = \"a\"\n").unwrap();
    assert_eq!(
        doc.table().tables("keys").unwrap_err().problem,
        Problem::WrongType
    );
}

#[test]
fn the_parser_refuses_bad_toml_and_duplicates() {
    let problem = |text: &str| Doc::parse(text).err().map(|e| e.problem);
    assert_eq!(problem("a = 1\na = 2\n"), Some(Problem::Duplicate));
    assert_eq!(problem("[t]\n[t]\n"), Some(Problem::Duplicate));
    assert_eq!(problem("a = \"open\n"), Some(Problem::NotToml));
    assert_eq!(problem("a = \"\u{1}\"\n"), Some(Problem::NotToml));
    // An integer past u64 parses, and is out of every range.
    let doc = Doc::parse("a = 99999999999999999999999\n").unwrap();
    let e = doc.table().int("a", 0..=u64::MAX).unwrap_err();
    assert_eq!(e.problem, Problem::Invalid);
    assert_eq!(problem("a = 1\n"), None);
    let e = Doc::parse("a = 1\nb = \"x\n").err().unwrap();
    assert_eq!(e.span.map(|s| s.start >= 6), Some(true));
}

#[test]
fn entries_come_in_the_order_of_the_file() {
    let doc = Doc::parse("zeta = 1\nalpha = 2\nmid = 3\n").unwrap();
    let names: Vec<_> = doc
        .table()
        .entries()
        .into_iter()
        .map(|(k, _)| k.get_ref().to_string())
        .collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
}
