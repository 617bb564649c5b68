//! Space-delimited patterns, with the examples of the AWS user guide.

mod common;

use common::*;

const APACHE_200: &str =
    r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534"#;
const APACHE_500: &str =
    r#"127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324"#;
const PROD_404: &str =
    r#"127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534"#;

/// The sample log of the AWS "pattern matching" space-delimited examples.
const LOG: &[&str] = &[
    "INFO 09/25/2014 12:00:00 GET /service/resource/67 1200",
    "INFO 09/25/2014 12:00:01 POST /service/resource/67/part/111 1310",
    "WARNING 09/25/2014 12:00:02 Invalid user request",
    "ERROR 09/25/2014 12:00:02 Failed to process request",
];

fn matching(pattern: &str) -> Vec<&'static str> {
    common::matching(LOG, pattern)
}

#[test]
fn doc_field_lists() {
    for m in [APACHE_200, APACHE_500, PROD_404] {
        yes(
            "[ip, user, username, timestamp, request, status_code, bytes]",
            m,
        );
        yes("[..., status_code, bytes]", m);
        yes("[ip, user, ..., status_code, bytes]", m);
        yes("[ip, user, ...]", m);
    }
}

#[test]
fn doc_conditions() {
    let big = "[ip, user, username, timestamp, request, status_code, bytes > 1000]";
    yes(big, APACHE_200);
    no(
        "[ip, user, username, timestamp, request, status_code, bytes > 2000]",
        APACHE_200,
    );
    yes(
        "[ip, user, username, timestamp, request, status_code = 200, bytes]",
        APACHE_200,
    );
    no(
        "[ip, user, username, timestamp, request, status_code = 200, bytes]",
        APACHE_500,
    );
    yes(
        "[ip, user, username, timestamp, request, status_code = 4*, bytes]",
        PROD_404,
    );
    no(
        "[ip, user, username, timestamp, request, status_code = 4*, bytes]",
        APACHE_500,
    );
    yes(
        "[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]",
        PROD_404,
    );
    no(
        "[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]",
        APACHE_200,
    );
    yes(
        r"[ip=%127\.0\.0\.[1-9]%, user, username, timestamp, request =*.html*, status_code = 4*, bytes]",
        PROD_404,
    );
    no(
        r"[ip=%127\.0\.0\.[1-9]%, user, username, timestamp, request, status_code, bytes]",
        "10.0.0.1 a b c d e f",
    );
    yes("[..., request =*.html*, status_code = 4*, bytes]", PROD_404);
    let either = "[ip, user, username, timestamp, request =*.html*, status_code = 404 || status_code = 410, bytes]";
    yes(either, PROD_404);
    yes(either, &PROD_404.replace(" 404 ", " 410 "));
    no(either, &PROD_404.replace(" 404 ", " 403 "));
    yes(
        "[ip, user, username, timestamp, request, status_code = 4* && status_code != 403, bytes]",
        PROD_404,
    );
    no(
        "[ip, user, username, timestamp, request, status_code = 4* && status_code != 404, bytes]",
        PROD_404,
    );
    yes(
        "[ip, server, username, timestamp, request, status_code, bytes > 1000]",
        PROD_404,
    );
    // The old guide's trailing comma: an unnamed last field.
    yes("[..., request=*.html*, status_code=4*,]", PROD_404);
}

#[test]
fn doc_pattern_matching_in_order() {
    assert_eq!(matching("[w1=ERROR, w2]"), vec![LOG[3]]);
    assert_eq!(
        matching("[w1=ERROR || w1=WARNING, w2]"),
        vec![LOG[2], LOG[3]]
    );
    assert_eq!(
        matching("[w1!=ERROR && w1!=WARNING, w2]"),
        vec![LOG[0], LOG[1]]
    );
    assert_eq!(
        matching("[w1 = ERROR||w1 = WARNING, w2]"),
        vec![LOG[2], LOG[3]]
    );
    assert_eq!(
        matching("[w1!=ERROR&&w1!=WARNING, w2]"),
        vec![LOG[0], LOG[1]]
    );
    assert_eq!(
        matching("[logLevel, date, time, method, url=%/service/resource/[0-9]+$%, response_time]"),
        vec![LOG[0]]
    );
    assert_eq!(
        matching("[logLevel, date, time, method, url=%/service/resource/[0-9]+/part/[0-9]+$%, response_time]"),
        vec![LOG[1]]
    );
    assert_eq!(
        matching("[w1=ERROR || w1=%WARN%, w2]"),
        vec![LOG[2], LOG[3]]
    );
    assert_eq!(
        matching("[w1 = ERROR && (w1 != FOO || w1 = WARNING), w2]"),
        vec![LOG[3]]
    );
    assert_eq!(
        matching("[log_level, date, time = %02%, method, url]"),
        vec![LOG[2], LOG[3]]
    );
    // The old guide's OR example.
    let old = p("[w1=ERROR || w1=WARN, w2]");
    assert!(old.matches("ERROR message"));
    assert!(old.matches("WARN message"));
    assert!(!old.matches("INFO message"));
}

#[test]
fn the_last_field_takes_the_rest_of_the_line() {
    // Without a "blank indicator" the single field is the whole line.
    assert!(matching("[w1=ERROR]").is_empty());
    assert_eq!(matching("[log_level = IN*]"), vec![LOG[0], LOG[1]]);
    assert_eq!(
        matching("[log_level = %^IN[fF][oO]%]"),
        vec![LOG[0], LOG[1]]
    );
    yes(r#"[w1, rest = "*process request"]"#, LOG[3]);
    yes(r#"[ip, user, rest = "frank [10/Oct*"]"#, PROD_404);
    yes(
        r#"[ip, user, rest = "*\"GET /index.html HTTP/1.0\" 404 1534"]"#,
        PROD_404,
    );
    // A single remaining field is used without its quotes or brackets.
    yes(r#"[a, b = "quoted words"]"#, r#"x "quoted words""#);
    // Several remaining fields are used verbatim, quotes included.
    yes(r#"[a, b = "\"quoted words\" y"]"#, r#"x "quoted words" y"#);
    no("[a, b > 10]", "x 20 30");
    yes("[a, b > 10]", "x 20");
}

#[test]
fn field_count_mismatches() {
    no("[a, b, c, d, e, f, g, h]", PROD_404);
    no("[a, b, c, d, e, f, g, h, ...]", PROD_404);
    no("[..., a, b, c, d, e, f, g, h]", PROD_404);
    no("[a, b, c, d, ..., e, f, g, h]", PROD_404);
    no("[w1=ERROR, w2]", "ERROR");
    no("[a]", "");
    no("[a]", "   ");
    yes("[a]", "one");
    yes("[a, b]", "one two");
}

#[test]
fn ellipsis_positions() {
    let m = "a b c d e";
    yes("[..., x = e]", m);
    no("[..., x = d]", m);
    yes("[..., x = d, y]", m);
    yes("[x = a, ...]", m);
    no("[x = b, ...]", m);
    yes("[x = a, ..., y = e]", m);
    yes("[x = a, y = b, ..., z = d, w = e]", m);
    yes("[x = a, y = b, c, ..., z = d, w = e]", m);
    yes("[x = a, y = b, c, d, ..., w = e]", m);
    yes("[x = a, b, c, d, e2, ...]", m);
    no("[x = a, b, c, d, e2, f, ...]", m);
    yes("[...]", m);
    yes("[...]", "");
    yes("[..., x]", "single");
    no("[..., x, y]", "single");
}

#[test]
fn quoted_and_bracketed_fields() {
    yes(
        r#"[..., request = "GET /index.html HTTP/1.0", status_code, bytes]"#,
        PROD_404,
    );
    yes(
        r#"[ip, user, name, ts = "10/Oct/2000:13:25:15 -0700", ...]"#,
        PROD_404,
    );
    yes("[ip, user, name, ts = 10/Oct*, ...]", PROD_404);
    yes("[a, b, c]", r#"one "two and a half" three"#);
    yes("[a, b, c]", "one [two and a half] three");
    yes("[a, b = \"\", c]", r#"one "" three"#);
    // Unterminated quotes and brackets are ordinary characters.
    yes("[a, b, c]", r#"ERROR "unterminated words"#);
    yes("[a, b = [open, c]", "x [open bracket");
}

#[test]
fn numeric_and_string_comparisons() {
    yes(
        "[..., status_code >= 400 && status_code < 500, bytes]",
        PROD_404,
    );
    no(
        "[..., status_code >= 400 && status_code < 404, bytes]",
        PROD_404,
    );
    yes("[..., status_code, bytes = 1534]", PROD_404);
    yes("[..., status_code, bytes = 1534.0]", PROD_404);
    yes("[..., status_code, bytes = 1.534e3]", PROD_404);
    no("[..., status_code, bytes < 100]", PROD_404);
    no("[..., status_code, bytes > 100]", "a b c d e f text");
    no("[..., status_code, bytes <= 100]", "a b c d e f text");
    yes("[..., status_code, bytes != 100]", "a b c d e f text");
    yes("[a, b != -]", "x 200");
    no("[a, b != -]", "x -");
    yes("[a, b = -1]", "x -1.0");
    yes("[a, b = *]", "x anything");
    yes("[a = +5, b]", "5 x");
    yes("[ip, ident = -, ...]", APACHE_200);
}

#[test]
fn whitespace_runs_and_tabs_separate_fields() {
    yes("[a, b = -, c]", "127.0.0.5  -  frank");
    yes("[a, b = -, c]", "127.0.0.6\t-\tfrank");
    yes("[a, b]", "  leading and trailing  ");
}

#[test]
fn empty_field_lists_match_everything() {
    yes("[]", PROD_404);
    yes("[ ]", "");
}

#[test]
fn invalid_space_delimited_patterns() {
    for (pattern, what) in [
        ("[a, b", "must end with ']'"),
        ("[a, b] trailing", "must end with ']'"),
        ("[a, ..., b, ..., c]", "only one ellipsis"),
        ("[..., status, ...]", "only one ellipsis"),
        ("[a, a]", "duplicate field name 'a'"),
        ("[a = 1, a]", "duplicate field name 'a'"),
        ("[a = ]", "expected a value after '='"),
        ("[a = 1 ||]", "expected a field name"),
        ("[1a]", "expected a field name"),
        ("[200, x]", "expected a field name"),
        (
            "[a, b=x || c=y]",
            "a condition can only test the field it is written in",
        ),
        (
            "[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000]",
            "refer to 'bytes'",
        ),
        ("[w1=ERROR AND w1=WARNING, w2]", "found 'AND'"),
        ("[w1=ERROR OR w1=WARNING, w2]", "found 'OR'"),
        ("[w1=ERROR && || w1=WARNING, w2]", "expected a field name"),
        ("[w1=ERROR !=== w1=WARNING, w2]", "'!=='"),
        ("[w1==ERROR  || w1!=WARNING, w2]", "'=='"),
        ("[w1===ERROR || w1!==WARNING, w2]", "'=='"),
        ("[a b, c]", "found 'b'"),
        ("[a > abc]", "requires a number"),
        ("[(a = 1, b]", "unbalanced '('"),
        ("[a=%x%, b=%y%, c=%z%]", "at most 2 regular expressions"),
        (
            "[a = %x% || a = %y% || a = %z%]",
            "at most 2 regular expressions",
        ),
        ("[a = \"open]", "unterminated quoted string"),
        ("[a = %[0-9%]", "unterminated character class"),
    ] {
        let e = err(pattern);
        assert!(e.contains(what), "{pattern}: {e}");
    }
    p("[a=%x%, b=%y%, c]");
    assert!(err("[a, b c]").contains("at position 7"));
    assert!(err(" [a, b c]").contains("at position 8"));
}

#[test]
fn required_substrings_of_space_delimited_patterns() {
    assert_eq!(p("[w1=ERROR, w2]").required_substrings(), vec!["ERROR"]);
    assert_eq!(
        p("[..., request = *.html*, status_code = 4*, bytes]").required_substrings(),
        vec![".html", "4"]
    );
    assert_eq!(
        p(r#"[a = "Connection refused" && a != x, b]"#).required_substrings(),
        vec!["Connection refused"]
    );
    assert!(p("[w1=ERROR || w1=WARNING, w2]")
        .required_substrings()
        .is_empty());
    assert!(p("[w1!=ERROR, w2]").required_substrings().is_empty());
    assert!(p("[a, b > 100]").required_substrings().is_empty());
    assert!(p("[a = 200, b]").required_substrings().is_empty());
    assert!(p("[a = %ERROR%, b]").required_substrings().is_empty());
    assert!(p("[a, b]").required_substrings().is_empty());
}
