//! Unstructured term patterns, including the examples of the AWS user guide.

mod common;

use common::*;

/// The sample log of the AWS "matching terms in unstructured log events" section.
const LOG: &[&str] = &[
    "[INFO 200] SUCCESSFUL REQUEST",
    "[ERROR 401] UNAUTHORIZED REQUEST",
    "[ERROR 400] BAD REQUEST",
    "[ERROR 419] MISSING ARGUMENTS",
    "[ERROR 420] INVALID ARGUMENTS",
    "[ERROR 500] INTERNAL SERVER ERROR",
    "[SUCCESS 200] AUTHORIZED REQUEST",
    "[INFO] REQUEST FAILED",
    "[WARN] UNAUTHORIZED REQUEST",
    "[WARNING 404] PAGE NOT FOUND",
    "[DEBUG 500] DEBUGGING INTERNAL INVALID",
];

fn matching(pattern: &str) -> Vec<&'static str> {
    common::matching(LOG, pattern)
}

#[test]
fn empty_and_blank_patterns_match_everything() {
    for pattern in ["", "   ", "\t\n", "\" \"", "\"\"", "\"   \""] {
        let compiled = p(pattern);
        assert!(compiled.matches(""), "{pattern:?}");
        assert!(compiled.matches("anything at all"), "{pattern:?}");
        assert!(compiled.matches("nospace"), "{pattern:?}");
    }
}

#[test]
fn doc_single_term() {
    assert_eq!(
        matching("ERROR"),
        vec![
            "[ERROR 401] UNAUTHORIZED REQUEST",
            "[ERROR 400] BAD REQUEST",
            "[ERROR 419] MISSING ARGUMENTS",
            "[ERROR 420] INVALID ARGUMENTS",
            "[ERROR 500] INTERNAL SERVER ERROR",
        ]
    );
    // The old user guide: terms are substrings.
    assert!(p("ERROR").matches("[ERROR] A fatal exception has occurred"));
    assert!(p("ERROR").matches("Exiting with ERRORCODE: -1"));
}

#[test]
fn doc_multiple_terms_must_all_appear_in_any_order() {
    assert_eq!(
        matching("ERROR ARGUMENTS"),
        vec![
            "[ERROR 419] MISSING ARGUMENTS",
            "[ERROR 420] INVALID ARGUMENTS"
        ]
    );
    assert_eq!(
        matching("ARGUMENTS ERROR"),
        vec![
            "[ERROR 419] MISSING ARGUMENTS",
            "[ERROR 420] INVALID ARGUMENTS"
        ]
    );
    let all = p("Failed to process the request");
    assert!(all.matches("[WARN] Failed to process the request"));
    assert!(all.matches("[ERROR] Unable to continue: Failed to process the request"));
    assert!(all.matches("the request: Failed to process"));
    assert!(!all.matches("Failed to process request"));
}

#[test]
fn doc_optional_terms() {
    assert_eq!(
        matching("?ERROR ?ARGUMENTS"),
        vec![
            "[ERROR 401] UNAUTHORIZED REQUEST",
            "[ERROR 400] BAD REQUEST",
            "[ERROR 419] MISSING ARGUMENTS",
            "[ERROR 420] INVALID ARGUMENTS",
            "[ERROR 500] INTERNAL SERVER ERROR",
        ]
    );
    assert!(p("?ERROR ?ARGUMENTS").matches("[INFO] INVALID ARGUMENTS PROVIDED"));
    assert!(!p("?ERROR ?ARGUMENTS").matches("[INFO 200] OK"));
    // "?ERROR ?WARN matches examples 1, 2, and 3".
    let either = p("?ERROR ?WARN");
    for m in ["ERROR WARN message", "ERROR message", "WARN message"] {
        assert!(either.matches(m), "{m}");
    }
    assert!(!either.matches("INFO message"));
    // A single optional term is required.
    assert!(p("?ERROR").matches("ERROR"));
    assert!(!p("?ERROR").matches("INFO"));
}

#[test]
fn doc_optional_terms_are_ignored_next_to_other_terms() {
    assert_eq!(
        matching("?ERROR ?ARGUMENTS REQUEST"),
        vec![
            "[INFO 200] SUCCESSFUL REQUEST",
            "[ERROR 401] UNAUTHORIZED REQUEST",
            "[ERROR 400] BAD REQUEST",
            "[SUCCESS 200] AUTHORIZED REQUEST",
            "[INFO] REQUEST FAILED",
            "[WARN] UNAUTHORIZED REQUEST",
        ]
    );
    // ... and next to exclusions only.
    let p2 = p("?ERROR ?ARGUMENTS -REQUEST");
    assert!(p2.matches("[WARNING 404] PAGE NOT FOUND"));
    assert!(!p2.matches("[ERROR 400] BAD REQUEST"));
    // Order does not matter.
    assert!(p("REQUEST ?ERROR").matches("[INFO] REQUEST FAILED"));
}

#[test]
fn doc_exact_phrase() {
    assert_eq!(
        matching("\"INTERNAL SERVER ERROR\""),
        vec!["[ERROR 500] INTERNAL SERVER ERROR"]
    );
    assert!(!p("\"INTERNAL SERVER ERROR\"").matches("[ERROR 500] INTERNAL ERROR ON SERVER"));
    assert!(!p("\"ERROR 500\"").matches("ERROR  500"));
    let bracket = p("\"[ERROR]\" Exception");
    assert!(bracket
        .matches("02 May 2014 00:34:16,142 [ERROR] Unhanded exception: InvalidQueryException"));
    assert!(!bracket.matches("02 May 2014 00:34:16,224 [ERROR] Terminating the application"));
}

#[test]
fn doc_include_and_exclude() {
    assert_eq!(
        matching("ERROR -ARGUMENTS"),
        vec![
            "[ERROR 401] UNAUTHORIZED REQUEST",
            "[ERROR 400] BAD REQUEST",
            "[ERROR 500] INTERNAL SERVER ERROR",
        ]
    );
    // "ERROR -WARN matches example 2".
    let p2 = p("ERROR -WARN");
    assert!(!p2.matches("ERROR WARN message"));
    assert!(p2.matches("ERROR message"));
    assert!(!p2.matches("WARN message"));
    // Exclusions alone.
    assert!(p("-ERROR").matches("all good"));
    assert!(!p("-ERROR").matches("an ERROR"));
    assert!(p("-\"BAD REQUEST\"").matches("[ERROR 401] UNAUTHORIZED REQUEST"));
    assert!(!p("ERROR -\"BAD REQUEST\"").matches("[ERROR 400] BAD REQUEST"));
}

#[test]
fn terms_are_case_sensitive() {
    assert!(!p("error").matches("[ERROR 400] BAD REQUEST"));
    assert!(p("Error").matches("Error: bad"));
    assert!(!p("Error").matches("ERROR: bad"));
}

#[test]
fn quoted_terms_may_hold_any_character() {
    assert!(p("\"hello-world\"").matches("say hello-world"));
    assert!(
        p("\"request-id-123\" \"user@example.com\"").matches("user@example.com request-id-1234")
    );
    assert!(p("\"{\\\"key\\\"\"").matches(r#"{"key": 1}"#));
    assert!(p(r#""C:\temp""#).matches(r"path C:\temp ok"));
    assert!(p("\"100%\"").matches("progress 100%"));
    assert!(p("?\"ERROR 500\" ?\"ERROR 502\"").matches("got ERROR 502 upstream"));
    assert!(p("\"ééé\" ünïcödé").matches("ééé and ünïcödé"));
}

#[test]
fn unicode_and_underscore_terms_need_no_quotes() {
    assert!(p("user_id Größe").matches("user_id=3 Größe=4"));
    assert!(p("500").matches("status 500"));
}

#[test]
fn invalid_term_patterns_are_rejected_with_a_position() {
    for (pattern, what) in [
        ("\"ERROR", "unterminated quoted string at position 1"),
        (
            "ERROR \"INTERNAL SERVER",
            "unterminated quoted string at position 7",
        ),
        ("request-id-123", "must be enclosed in double quotes"),
        ("ERROR: failed", "contains the character ':'"),
        ("ERR*", "contains the character '*'"),
        ("a.b", "at position 2"),
        ("\"ERROR\"x", "must be followed by a space"),
        ("ERROR -", "'-' must be followed by a term"),
        ("? ERROR", "'?' must be followed by a term"),
        ("ERROR %ERR.*%", "must be the whole pattern"),
        ("ERROR {$.a = 1}", "must be the whole pattern"),
        ("ERROR [a, b]", "must be the whole pattern"),
        ("ab\"cd", "unexpected '\"'"),
        ("--x", "contains the character '-'"),
    ] {
        let e = err(pattern);
        assert!(e.starts_with("Invalid filter pattern: "), "{pattern}: {e}");
        assert!(e.contains(what), "{pattern}: {e}");
    }
}

#[test]
fn error_positions_count_characters_of_the_pattern_as_written() {
    assert!(err("  \"ERROR").ends_with("at position 3"));
    assert!(err("é ü a.b").ends_with("at position 6"));
    // A leading space (as used on the AWS CLI for exclusion-only patterns) is fine.
    assert!(p(" -ARGUMENTS").matches("[ERROR 400] BAD REQUEST"));
}

#[test]
fn required_substrings_of_term_patterns() {
    assert_eq!(
        p("ERROR ARGUMENTS").required_substrings(),
        vec!["ERROR", "ARGUMENTS"]
    );
    assert_eq!(
        p("\"INTERNAL SERVER ERROR\" -DEBUG").required_substrings(),
        vec!["INTERNAL SERVER ERROR"]
    );
    assert_eq!(
        p("?ERROR ?ARGUMENTS REQUEST").required_substrings(),
        vec!["REQUEST"]
    );
    assert_eq!(
        p("\"[ERROR]\" Error").required_substrings(),
        vec!["[ERROR]", "Error"]
    );
    assert_eq!(p("?ERROR").required_substrings(), vec!["ERROR"]);
    assert_eq!(p("\"--\"").required_substrings(), vec!["--"]);
    assert!(p("?ERROR ?WARN").required_substrings().is_empty());
    assert!(p("-ERROR").required_substrings().is_empty());
    assert!(p("\" \"").required_substrings().is_empty());
    assert!(p("").required_substrings().is_empty());
}
