//! Parsing and matching never panic, whatever the input.

use std::panic::catch_unwind;

use gantry_logs_pattern::FilterPattern;

/// A small deterministic xorshift generator (no dependency needed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\"",
    "'",
    "%",
    "$",
    "$.",
    ".",
    "..",
    "...",
    "*",
    "?",
    "-",
    "=",
    "!=",
    "==",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "&",
    "|",
    "!",
    ",",
    " ",
    "  ",
    "\t",
    "\n",
    "\\",
    "\\\"",
    "a",
    "ERROR",
    "w1",
    "42",
    "-1e3",
    "1e999",
    "IS",
    "NOT",
    "EXISTS",
    "TRUE",
    "NULL",
    "[0]",
    "[*]",
    "['k']",
    "[99999999999999999999999]",
    "{3,5}",
    "{",
    "{,}",
    "^",
    "é",
    "日本",
    "\u{0}",
    "\u{7f}",
    "\u{feff}",
    "🦀",
    "\\x4",
    "\\xZZ",
    "\\d",
    "[^",
    "a-",
    "z-a",
];

const MESSAGES: &[&str] = &[
    "",
    " ",
    "ERROR 42",
    r#"{"a": 1, "b": [1, {"c": null}], "d": "x*y", "e": true}"#,
    r#"{"$": {"": ""}, "k": "é🦀", "n": -1e3}"#,
    r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET / HTTP/1.0" 200 1534"#,
    "\"unterminated [bracket \\",
    "[[[[]]]] \"\"\"\" \\\"",
    "日本語 🦀 \u{0}",
    "{",
    "[1, 2, 3]",
];

fn exercise(pattern: &str) {
    let outcome = catch_unwind(|| {
        if let Ok(compiled) = FilterPattern::parse(pattern) {
            for message in MESSAGES {
                let _ = compiled.matches(message);
            }
            let _ = compiled.required_substrings();
        }
    });
    assert!(outcome.is_ok(), "panicked on pattern {pattern:?}");
}

#[test]
fn random_fragment_soup_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..3000 {
        let len = 1 + rng.below(12);
        let mut pattern = String::new();
        // Start some patterns with a kind marker so every parser gets exercised.
        match round % 4 {
            0 => pattern.push('{'),
            1 => pattern.push('['),
            2 => pattern.push('%'),
            _ => {}
        }
        for _ in 0..len {
            pattern.push_str(rng.pick(FRAGMENTS));
        }
        match round % 8 {
            0 => pattern.push('}'),
            1 => pattern.push(']'),
            2 => pattern.push('%'),
            _ => {}
        }
        exercise(&pattern);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..1000 {
        let len = rng.below(40);
        let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
        let pattern = String::from_utf8_lossy(&bytes).into_owned();
        exercise(&pattern);
        // Random messages against a few real patterns too.
        for compiled in [
            "{ $.a = 1 || $.* = %x% }",
            "[a, ..., b = *x*]",
            "[a, b, c]",
            "?x ?y",
            "%^.+$%",
        ] {
            if let Ok(p) = FilterPattern::parse(compiled) {
                let _ = p.matches(&pattern);
            }
        }
    }
}

#[test]
fn mutations_of_valid_patterns_never_panic() {
    let valid = [
        r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#,
        r#"{ $.* = %111\.111\.111\.1[0-9]{1,2}% && $.['cluster.name'] = "c" }"#,
        "{ $.SomeObject IS NULL || $.x NOT EXISTS }",
        "[ip, user, ..., status_code = 4* || status_code = 5*, bytes > 1000]",
        r"[ip=%127\.0\.0\.[1-9]%, user, username, timestamp, request =*.html*, status_code = 4*, bytes]",
        r#"?ERROR ?"WARN 1" -DEBUG "a b""#,
        "%^starting|^initializing|^shutting down%",
    ];
    let mut rng = Rng(42);
    for base in valid {
        let chars: Vec<char> = base.chars().collect();
        for _ in 0..300 {
            let mut mutated = chars.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(mutated.len() + 1);
                match rng.below(3) {
                    0 if at < mutated.len() => {
                        mutated.remove(at);
                    }
                    1 => {
                        let insert: Vec<char> = rng.pick(FRAGMENTS).chars().collect();
                        for (k, c) in insert.into_iter().enumerate() {
                            mutated.insert(at + k, c);
                        }
                    }
                    _ => mutated.truncate(at),
                }
            }
            let pattern: String = mutated.into_iter().collect();
            exercise(&pattern);
        }
    }
}

#[test]
fn deep_nesting_and_huge_inputs_are_rejected_or_handled() {
    let deep = format!("{{ {}$.a = 1{} }}", "(".repeat(10_000), ")".repeat(10_000));
    let e = FilterPattern::parse(&deep).map(|_| ()).unwrap_err();
    assert!(e.message.contains("nested too deeply"), "{}", e.message);
    let deep = format!("[{}a = 1{}]", "(".repeat(10_000), ")".repeat(10_000));
    assert!(FilterPattern::parse(&deep).is_err());

    let nested_json = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let p = FilterPattern::parse("{ $.a NOT EXISTS }").unwrap();
    assert!(!p.matches(&nested_json));
    let nested_obj = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    assert!(!p.matches(&nested_obj));

    let long = "x ".repeat(200_000);
    assert!(FilterPattern::parse("[a, ..., b = x]")
        .unwrap()
        .matches(&long));
    assert!(FilterPattern::parse("x").unwrap().matches(&long));
    let many_terms = "ERROR ".repeat(5_000);
    assert!(FilterPattern::parse(&many_terms).unwrap().matches("ERROR"));
    let many_ors = format!("{{ {} }}", vec!["$.a = 1"; 5_000].join(" || "));
    assert!(FilterPattern::parse(&many_ors)
        .unwrap()
        .matches(r#"{"a": 1}"#));
}
