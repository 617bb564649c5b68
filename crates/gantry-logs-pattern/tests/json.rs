//! JSON patterns, with the examples of the AWS user guide.

mod common;

use common::*;

/// The example event of the AWS JSON section.
const EVENT: &str = r#"{
  "eventType": "UpdateTrail",
  "sourceIPAddress": "111.111.111.111",
  "arrayKey": ["value", "another value"],
  "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
  "SomeObject": null,
  "ThisFlag": true,
  "cluster.name": "c"
}"#;

/// The example object of the AWS compound-expression section.
const COMPOUND: &str = r#"{
  "user": {"id": 1, "email": "John.Stiles@example.com"},
  "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}],
  "actions": ["GET", "PUT", "DELETE"],
  "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]]
}"#;

#[test]
fn doc_string_examples() {
    yes(r#"{ $.eventType = "UpdateTrail" }"#, EVENT);
    yes("{ $.eventType = UpdateTrail }", EVENT);
    no(r#"{ $.eventType = "updatetrail" }"#, EVENT);
    yes("{ $.sourceIPAddress != 123.123.* }", EVENT);
    no("{ $.sourceIPAddress != 111.111.* }", EVENT);
    yes("{ $.sourceIPAddress = 111.111.* }", EVENT);
    yes(r#"{ $.arrayKey[0] = "value" }"#, EVENT);
    no(r#"{ $.arrayKey[1] = "value" }"#, EVENT);
    yes(r#"{ $.arrayKey[1] = "another value" }"#, EVENT);
    yes("{ $.objectList[1].id = 2 }", EVENT);
    no("{ $.objectList[0].id = 2 }", EVENT);
    yes(r#"{ $.objectList[1].name = "b" }"#, EVENT);
    yes("{ $.eventType = %Trail% }", EVENT);
    yes("{ $.arrayKey[*] = %val.{2}% }", EVENT);
    yes(r"{ $.* = %111\.111\.111\.1[0-9]{1,2}% }", EVENT);
    yes(r#"{ $.['cluster.name'] = "c" }"#, EVENT);
    yes(r#"{ $["cluster.name"] = "c" }"#, EVENT);
    no(r#"{ $.cluster.name = "c" }"#, EVENT);
    yes(
        r#"{ $.eventType = "*" && $.sourceIPAddress != 123.123.* }"#,
        EVENT,
    );
}

#[test]
fn doc_old_or_example() {
    let either = p("{$.foo = bar || $.foo = baz }");
    assert!(p("{$.foo = bar}").matches(r#"{"foo": "bar"}"#));
    assert!(!p("{$.foo = baz }").matches(r#"{"foo": "bar"}"#));
    assert!(either.matches(r#"{"foo": "bar"}"#));
    assert!(either.matches(r#"{"foo": "baz"}"#));
    assert!(!either.matches(r#"{"foo": "qux"}"#));
}

#[test]
fn doc_is_and_not_exists() {
    yes("{ $.SomeObject IS NULL }", EVENT);
    no("{ $.eventType IS NULL }", EVENT);
    no("{ $.Missing IS NULL }", EVENT);
    yes("{ $.SomeOtherObject NOT EXISTS }", EVENT);
    no("{ $.eventType NOT EXISTS }", EVENT);
    no("{ $.SomeObject NOT EXISTS }", EVENT);
    yes("{ $.ThisFlag IS TRUE }", EVENT);
    no("{ $.ThisFlag IS FALSE }", EVENT);
    yes("{ $.flag IS FALSE }", r#"{"flag": false}"#);
    no("{ $.flag IS TRUE }", r#"{"flag": "true"}"#);
    yes("{ $.flag is true }", r#"{"flag": true}"#);
    // Booleans and null satisfy no comparison.
    no("{ $.flag = true }", r#"{"flag": true}"#);
    yes("{ $.flag = true }", r#"{"flag": "true"}"#);
    no(r#"{ $.SomeObject = "*" }"#, EVENT);
    no("{ $.SomeObject != 1 }", EVENT);
}

#[test]
fn doc_numeric_examples() {
    yes("{ $.bandwidth > 75 }", r#"{"bandwidth": 80}"#);
    no("{ $.bandwidth > 75 }", r#"{"bandwidth": 75}"#);
    yes("{ $.latency < 50 }", r#"{"latency": 49.5}"#);
    yes("{ $.refreshRate >= 60 }", r#"{"refreshRate": 60}"#);
    yes("{ $.responseTime <= 5 }", r#"{"responseTime": 5}"#);
    yes("{ $.errorCode = 400}", r#"{"errorCode": 400}"#);
    yes("{ $.errorCode != 500 }", r#"{"errorCode": 400}"#);
    no("{ $.errorCode != 500 }", r#"{"errorCode": 500}"#);
    yes("{ $.number[0] = 1e+3 }", r#"{"number": [1000]}"#);
    yes("{ $.number[0] != 1e-3 }", r#"{"number": [1000]}"#);
    yes("{ $.numbers[0] < 10e3 }", r#"{"numbers": [9999]}"#);
    no("{ $.numbers[0] < 10e-3 }", r#"{"numbers": [0.5]}"#);
    yes(
        "{ $.processes[4].averageRuntime <= 55.5 }",
        r#"{"processes": [0,0,0,0,{"averageRuntime": 55.5}]}"#,
    );
    yes("{ $.latency > +1000 }", r#"{"latency": 1000.5}"#);
    yes("{ $.v = -1 }", r#"{"v": -1.0}"#);
    yes("{ $.v = 1 }", r#"{"v": 1e0}"#);
    yes("{ $.errorCode = 4* }", r#"{"errorCode": 404}"#);
    no("{ $.errorCode = 4* }", r#"{"errorCode": 504}"#);
    yes(
        "{ $.latency = * }",
        r#"{"latency": 50, "requestType": "GET"}"#,
    );
    no("{ $.latency = * }", r#"{"requestType": "GET"}"#);
}

#[test]
fn numbers_and_numeric_strings() {
    // A string holding a number compares as that number; other strings never do.
    yes("{ $.count = 3 }", r#"{"count": "3"}"#);
    yes("{ $.count > 2 }", r#"{"count": "3.5"}"#);
    no("{ $.count > 2 }", r#"{"count": "many"}"#);
    no("{ $.count < 2 }", r#"{"count": "many"}"#);
    yes("{ $.count != 2 }", r#"{"count": "many"}"#);
    // Quoted values compare as strings, against a number's text.
    yes(r#"{ $.count = "3" }"#, r#"{"count": 3}"#);
    no(r#"{ $.count = "3" }"#, r#"{"count": 3.5}"#);
    yes(r#"{ $.version = "1.10" }"#, r#"{"version": "1.10"}"#);
    no("{ $.version = 1.1 }", r#"{"version": "1.2"}"#);
    yes("{ $.version = 1.1 }", r#"{"version": "1.10"}"#);
}

#[test]
fn string_wildcards() {
    yes(r#"{ $.level = "err*" }"#, r#"{"level": "error"}"#);
    no(r#"{ $.level = "err*" }"#, r#"{"level": "ERROR"}"#);
    yes(r#"{ $.op = "*Event" }"#, r#"{"op": "PutEvent"}"#);
    yes(r#"{ $.op = "Event*" }"#, r#"{"op": "EventName"}"#);
    yes(r#"{ $.op = *ven* }"#, r#"{"op": "GetEvents"}"#);
    // "Ev*ent will only match the actual string Ev*ent".
    no(r#"{ $.op = "Ev*ent" }"#, r#"{"op": "Event"}"#);
    yes(r#"{ $.op = "Ev*ent" }"#, r#"{"op": "Ev*ent"}"#);
    yes(r#"{ $.op != "Get*" }"#, r#"{"op": "PutEvent"}"#);
    yes(r#"{ $.email = "x@y.com" }"#, r#"{"email": "x@y.com"}"#);
    yes(r#"{ $.s = "" }"#, r#"{"s": ""}"#);
    yes(r#"{ $.s = "say \"hi\"" }"#, r#"{"s": "say \"hi\""}"#);
}

#[test]
fn doc_compound_examples() {
    yes(
        r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#,
        COMPOUND,
    );
    no(
        r#"{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }"#,
        COMPOUND,
    );
    yes(
        r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }"#,
        COMPOUND,
    );
    no(
        r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }"#,
        COMPOUND,
    );
    yes("{ $.coordinates[1][2] = 6 }", COMPOUND);
    yes("{ $.coordinates[0][1] = 1 }", COMPOUND);
    yes(r#"{ $.users[*].email = "Jane.Doe@example.com" }"#, COMPOUND);
    yes(
        r#"{ $.users[*].id = 2 || $.actions[*] = "GET" || $.coordinates[*][0] = 4 }"#,
        COMPOUND,
    );
}

#[test]
fn brief_examples() {
    let p1 = p(r#"{ $.level = "error" && $.latency > 100 }"#);
    assert!(p1.matches(r#"{"level": "error", "latency": 101}"#));
    assert!(!p1.matches(r#"{"level": "error", "latency": 100}"#));
    assert!(!p1.matches(r#"{"level": "warn", "latency": 500}"#));
    let p2 = p(r#"{ ($.user.id = 1) || ($.user.email = "x@y.com") }"#);
    assert!(p2.matches(r#"{"user": {"id": 1}}"#));
    assert!(p2.matches(r#"{"user": {"id": 2, "email": "x@y.com"}}"#));
    assert!(!p2.matches(r#"{"user": {"id": 2, "email": "z@y.com"}}"#));
}

#[test]
fn precedence_and_nested_parentheses() {
    let m = r#"{"a": 1, "b": 0, "c": 0}"#;
    yes("{ $.a = 1 || $.b = 2 && $.c = 3 }", m);
    no("{ ($.a = 1 || $.b = 2) && $.c = 3 }", m);
    yes("{ ((($.a = 1))) }", m);
    yes(
        "{ (($.a = 1 && ($.b = 0 || $.b = 9)) || ($.c = 5)) && $.c = 0 }",
        m,
    );
    no(
        "{ (($.a = 1 && ($.b = 5 || $.b = 9)) || ($.c = 5)) && $.c = 0 }",
        m,
    );
    yes("{$.a=1&&$.b=0}", m);
    yes("{\t$.a = 1\n}", m);
}

#[test]
fn selectors_on_the_wrong_kind_of_node() {
    // Objects and arrays are not value nodes: neither = nor != holds.
    no("{ $.users = 1 }", r#"{"users": [1, 2, 3]}"#);
    no("{ $.users != 1 }", r#"{"users": [1, 2, 3]}"#);
    no(r#"{ $.arrayKey = "value" }"#, EVENT);
    no(r#"{ $.objectList[0] != "x" }"#, EVENT);
    // Indexes need arrays, names need objects.
    no(r#"{ $.arr[0] = "hit" }"#, r#"{"arr": {"0": "hit"}}"#);
    no(
        r#"{ $.nested.value = "hit" }"#,
        r#"{"nested": [{"value": "hit"}]}"#,
    );
    no("{ $.arr[5] = 1 }", r#"{"arr": [1]}"#);
    yes("{ $.arr[5] NOT EXISTS }", r#"{"arr": [1]}"#);
}

#[test]
fn missing_keys() {
    no(r#"{ $.missing != "x" }"#, EVENT);
    no("{ $.missing < 1 }", EVENT);
    no(r#"{ $.user.missing = "x" }"#, COMPOUND);
    yes("{ $.user.missing NOT EXISTS }", COMPOUND);
    yes("{ $.a.b.c NOT EXISTS }", r#"{"a": 1}"#);
    yes(r#"{ $.missing NOT EXISTS && $.user.id = 1 }"#, COMPOUND);
}

#[test]
fn wildcards() {
    let m = r#"{"items": [{"a": 1, "b": 0}, {"a": 0, "b": 2}], "arr": ["miss", "hit"], "o": {"x": "hit"}}"#;
    yes(r#"{ $.arr[*] = "hit" }"#, m);
    yes(r#"{ $.o.* = "hit" }"#, m);
    yes(r#"{ $.* = "nope" || $.o[*] = "hit" }"#, m);
    yes("{ $.items[*].a = 1 && $.items[*].b = 2 }", m);
    no("{ $.items[*].c = 1 }", m);
    yes("{ $.items[*].c NOT EXISTS }", m);
    no("{ $.items[*].a NOT EXISTS }", m);
    yes(r#"{ $.arr[*] != "hit" }"#, m);
}

#[test]
fn non_json_messages_never_match() {
    for pattern in [
        r#"{ $.eventType = "UpdateTrail" }"#,
        "{ $.eventType NOT EXISTS }",
        "{ $.x != 1 }",
    ] {
        for message in [
            "eventType=UpdateTrail",
            r#"2024-01-01 INFO {"eventType": "UpdateTrail"}"#,
            "",
            "not json",
            "{broken",
            r#"[{"eventType": "UpdateTrail"}]"#,
            "42",
            "null",
            r#""{\"eventType\": \"UpdateTrail\"}""#,
        ] {
            no(pattern, message);
        }
    }
    yes("{ $.eventType NOT EXISTS }", "{}");
    yes("{ $.x = 1 }", "  {\"x\": 1}\n");
}

#[test]
fn duplicate_keys_use_the_last_value() {
    yes("{ $.v = 2 }", r#"{"v": 1, "v": 2}"#);
}

#[test]
fn unicode_keys_and_values() {
    yes(r#"{ $.größe = "groß" }"#, r#"{"größe": "groß"}"#);
    yes(
        r#"{ $.['ключ с пробелом'] = "да" }"#,
        r#"{"ключ с пробелом": "да"}"#,
    );
    // The message is decoded, so escapes in it compare as the characters they stand for.
    yes(r#"{ $.msg = "café" }"#, r#"{"msg": "caf\u00e9"}"#);
}

#[test]
fn invalid_json_patterns() {
    for (pattern, what) in [
        ("{ $.a = 1", "must end with '}'"),
        ("{ $.a = 1 } trailing", "must end with '}'"),
        ("{}", "empty JSON filter pattern"),
        ("{   }", "empty JSON filter pattern"),
        (
            "{ $.a = }",
            "expected a value after '=' but the pattern ended",
        ),
        ("{ $.a }", "expected a comparison operator"),
        ("{ a = 1 }", "property selector starting with '$.'"),
        ("{ $ = 1 }", "empty property selector"),
        ("{ $. = 1 }", "expected a property name"),
        ("{ $.a == 1 }", "'=='"),
        ("{ $.a = 1 && }", "expected a property selector"),
        ("{ ($.a = 1 }", "unbalanced '('"),
        ("{ $.a = 1) }", "expected '&&', '||' or the closing '}'"),
        ("{ $.a IS MAYBE }", "TRUE, FALSE or NULL"),
        ("{ $.a IS NOT NULL }", "'IS NOT' is not supported"),
        ("{ $.a EXISTS }", "'EXISTS' is not supported"),
        ("{ $.a NOT NULL }", "EXISTS after NOT"),
        ("{ $.a[x] = 1 }", "array index"),
        ("{ $.a = \"unterminated }", "unterminated quoted string"),
        ("{ $.x[99999999999999999999] = 1 }", "array index"),
        ("{ $.a > \"Alpha\" }", "operator '>' requires a number"),
        ("{ $.a <= abc }", "operator '<=' requires a number"),
        ("{ $.a > %x% }", "requires a number"),
        ("{ $.a = 1 AND $.b = 2 }", "found 'AND'"),
        ("{ !($.v = 1) }", "'!' must be followed by '='"),
        ("{ \"v\": [1] }", "property selector"),
        ("{ $..value = 1 }", "expected a property name"),
        ("{ $.arr[-1] = 1 }", "array index"),
        ("{ $.arr[0:2] = 1 }", "array index"),
        ("{ $.*[*] = 1 }", "only one wildcard"),
        ("{ $.a = 1 & $.b = 2 }", "single '&'"),
        ("{ $.a = %(x)% }", "parentheses"),
        (
            "{ $.v = %A% || $.v = %B% || $.v = %C% }",
            "at most 2 regular expressions",
        ),
        (
            "{ $.a[*] = 1 || $.b[*] = 1 || $.c[*] = 1 || $.d[*] = 1 }",
            "at most 3 selectors with a wildcard",
        ),
    ] {
        let e = err(pattern);
        assert!(e.contains(what), "{pattern}: {e}");
    }
    assert!(err("{ $.a = 1 && }").contains("at position 14"));
    assert!(err("{ $.a ! 1 }").contains("at position 7"));
    assert!(err("   { $.a ! 1 }").contains("at position 10"));
    assert!(err("\t{ $.é ! 1 }").contains("at position 8"));
    assert!(err(" { $.a = %x(% } ").contains("at position 12"));
}

#[test]
fn json_patterns_report_no_required_substrings() {
    assert!(p(r#"{ $.level = "error" }"#)
        .required_substrings()
        .is_empty());
}
