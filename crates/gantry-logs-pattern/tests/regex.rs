//! Standalone `%regex%` patterns, with the operator examples of the AWS user guide.

mod common;

use common::*;

#[test]
fn doc_standalone_regex() {
    let r = p("%AUTHORIZED%");
    assert!(r.matches("[ERROR 401] UNAUTHORIZED REQUEST"));
    assert!(r.matches("[SUCCESS 200] AUTHORIZED REQUEST"));
    assert!(!r.matches("[SUCCESS 200] OK"));
    assert!(p("  %AUTHORIZED%  ").matches("AUTHORIZED"));
}

#[test]
fn doc_anchors() {
    let start = p("%^[hc]at%");
    assert!(start.matches("hat trick"));
    assert!(start.matches("cat"));
    assert!(!start.matches("a hat"));
    let end = p("%[hc]at$%");
    assert!(end.matches("the cat"));
    assert!(!end.matches("cats"));
}

#[test]
fn doc_quantifiers() {
    assert!(p("%colou?r%").matches("color"));
    assert!(p("%colou?r%").matches("colour"));
    assert!(!p("%^colou?r$%").matches("colouur"));
    let a = p("%^a{3,5}$%");
    assert!(!a.matches("aa"));
    for m in ["aaa", "aaaa", "aaaaa"] {
        assert!(a.matches(m), "{m}");
    }
    assert!(!a.matches("aaaaaa"));
    assert!(
        p("%a{3,5}%").matches("xaaaaaaax"),
        "unanchored: a substring matches"
    );
    for m in ["ac", "abc", "abbbc"] {
        assert!(p("%ab*c%").matches(m), "{m}");
    }
    for m in ["ab", "ab0", "ab129"] {
        assert!(p("%ab[0-9]*%").matches(m), "{m}");
    }
    for m in ["abc", "abbc", "abbbc"] {
        assert!(p("%ab+c%").matches(m), "{m}");
    }
    assert!(!p("%ab+c%").matches("ac"));
}

#[test]
fn doc_classes() {
    assert!(p("%[abc]%").matches("xbx"));
    assert!(!p("%[abc]%").matches("xyz"));
    assert!(p("%[a-z]%").matches("Q7q"));
    assert!(!p("%[a-z]%").matches("Q7"));
    for m in ["a", "b", "c", "x", "y", "z"] {
        assert!(p("%^[abcx-z]$%").matches(m), "{m}");
    }
    assert!(!p("%^[abcx-z]$%").matches("d"));
}

#[test]
fn doc_alternation() {
    let gray = p("%gra|ey%");
    assert!(gray.matches("gray"));
    assert!(gray.matches("grey"));
    let phases = p("%^starting|^initializing|^shutting down%");
    assert!(phases.matches("starting ..."));
    assert!(phases.matches("initializing ..."));
    assert!(phases.matches("shutting down"));
    assert!(!phases.matches("skipping initializing ..."));
    let abc = p("%abcc|ab[^c]$%");
    assert!(abc.matches("abcc ..."));
    assert!(abc.matches("aba"));
    assert!(!abc.matches("aac ..."));
}

#[test]
fn doc_escapes_and_dot() {
    let brackets = p(r"%\[.\]%");
    for m in ["[a]", "[b]", "[7]", "[@]", "[]]", "[ ]"] {
        assert!(brackets.matches(m), "{m}");
    }
    assert!(!brackets.matches("[ab]"));
    let ip = p(r"%10\.10\.0\.1%");
    assert!(ip.matches("from 10.10.0.1"));
    assert!(!ip.matches("10010,051"));
    assert!(
        p("%10.10.0.1%").matches("10010,051"),
        "an unescaped dot matches anything"
    );
    for m in ["hat", "cat", "bat", "4at", "#at", " at"] {
        assert!(p("%^.at$%").matches(m), "{m}");
    }
    assert!(p(r"%\d%").matches("port 80"));
    assert!(!p(r"%\d%").matches("no digits"));
    assert!(p(r"%^\D+$%").matches("no digits"));
    assert!(p(r"%a\sb%").matches("a\tb"));
    assert!(p(r"%a\Sb%").matches("a-b"));
    assert!(p(r"%^\w+$%").matches("a_Z_9"));
    assert!(!p(r"%^\w+$%").matches("a-b"));
    assert!(p(r"%\W%").matches("a-b"));
    assert!(p(r"%\x3A%").matches("key:value"));
    assert!(p(r"%\x28%").matches("call f(x)"));
    assert!(p(r"%^ERROR\s[0-9]{3}$%").matches("ERROR 500"));
    assert!(!p(r"%^ERROR\s[0-9]{3}$%").matches("ERROR 5000"));
    assert!(p(r"%a\-b%").matches("a-b"));
    assert!(p(r"%\\%").matches(r"back\slash"));
}

#[test]
fn regex_is_case_sensitive() {
    assert!(!p("%error%").matches("ERROR"));
    assert!(p("%[eE][rR][rR]%").matches("ErR"));
}

#[test]
fn unsupported_regex_constructs_are_rejected() {
    for (pattern, what) in [
        ("%something!%", "'!'"),
        ("%^(ERROR|WARN)%", "parentheses"),
        ("%ERROR(?= 500)%", "parentheses"),
        ("%café%", "multi-byte"),
        (r"%\p%", "unsupported escape"),
        (r"%\!%", "not supported"),
        ("%[abc%", "unterminated character class"),
        ("%%", "empty regular expression"),
        ("%abc", "must start and end with '%'"),
        ("%abc% ERROR", "must start and end with '%'"),
        ("%a%b%", "'%'"),
        ("%a{3,%", "malformed"),
        ("%+a%", "without a preceding term"),
        ("%a|%", "empty alternative"),
        ("%\"quoted\"%", "not supported"),
    ] {
        let e = err(pattern);
        assert!(e.contains(what), "{pattern}: {e}");
    }
    assert!(err("%a!%").contains("at position 3"));
    assert!(err("  %a!%  ").contains("at position 5"));
}

#[test]
fn pathological_regexes_stay_linear() {
    let r = p("%^a*a*a*a*a*a*a*a*$%");
    assert!(r.matches(&"a".repeat(20_000)));
    let r = p("%a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?aaaaaaaaaaaaaaaaaaaa%");
    assert!(r.matches(&"a".repeat(20)));
    assert!(!r.matches(&"a".repeat(19)));
    let big = p("%[a-z]{1000}x%");
    assert!(!big.matches(&"b".repeat(10_000)));
}

#[test]
fn regex_patterns_report_no_required_substrings() {
    assert!(p("%AUTHORIZED%").required_substrings().is_empty());
}
