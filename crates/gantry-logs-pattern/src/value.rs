//! Comparison values shared by JSON and space-delimited patterns.

use crate::regex::Regex;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// Whether the operator only makes sense for numbers.
    pub(crate) fn is_ordering(self) -> bool {
        matches!(self, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge)
    }

    pub(crate) fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A string with optional leading and trailing `*` wildcards.
///
/// As in the AWS documentation ("`Ev*ent` will only match the actual string `Ev*ent`"),
/// only leading and trailing asterisks are wildcards; an inner `*` is literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    core: String,
    any_prefix: bool,
    any_suffix: bool,
}

impl Glob {
    pub(crate) fn new(text: &str) -> Glob {
        let without_prefix = text.trim_start_matches('*');
        let any_prefix = without_prefix.len() != text.len();
        let core = without_prefix.trim_end_matches('*');
        let any_suffix = core.len() != without_prefix.len();
        Glob {
            core: core.to_string(),
            any_prefix,
            any_suffix,
        }
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        match (self.any_prefix, self.any_suffix) {
            (false, false) => text == self.core,
            (true, false) => text.ends_with(&self.core),
            (false, true) => text.starts_with(&self.core),
            (true, true) => text.contains(&self.core),
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// An unquoted number, with its text as written.
    Number { value: f64, text: String },
    /// A string (quoted or not), possibly with wildcards.
    Text(Glob),
    /// A `%regex%`.
    Regex(Regex),
}

impl Value {
    /// Compares a field or JSON value whose text is `text` (and numeric value `number`,
    /// when the text is a number) with this value using `op`.
    pub(crate) fn test(&self, op: CmpOp, text: &str, number: Option<f64>) -> bool {
        match self {
            Value::Number {
                value,
                text: literal,
            } => match (number, op) {
                (Some(n), CmpOp::Eq) => n == *value,
                (Some(n), CmpOp::Ne) => n != *value,
                (Some(n), CmpOp::Lt) => n < *value,
                (Some(n), CmpOp::Le) => n <= *value,
                (Some(n), CmpOp::Gt) => n > *value,
                (Some(n), CmpOp::Ge) => n >= *value,
                // Not a number: equality falls back to comparing the text.
                (None, CmpOp::Eq) => text == literal,
                (None, CmpOp::Ne) => text != literal,
                (None, _) => false,
            },
            Value::Text(glob) => match op {
                CmpOp::Eq => glob.matches(text),
                CmpOp::Ne => !glob.matches(text),
                _ => false,
            },
            Value::Regex(re) => match op {
                CmpOp::Eq => re.is_match(text),
                CmpOp::Ne => !re.is_match(text),
                _ => false,
            },
        }
    }

    /// A literal that any text this value accepts with `op` must contain.
    pub(crate) fn required_literal(&self, op: CmpOp) -> Option<&str> {
        match (self, op) {
            (Value::Text(glob), CmpOp::Eq) if !glob.core.is_empty() => Some(&glob.core),
            _ => None,
        }
    }
}

/// Parses a number as CloudWatch writes them: an optional sign, digits with an optional
/// decimal part, and an optional exponent (`e`/`E`, optional sign, digits).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let bytes = s.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut digits = i - int_start;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_documented_grammar() {
        assert_eq!(parse_number("400"), Some(400.0));
        assert_eq!(parse_number("+1000"), Some(1000.0));
        assert_eq!(parse_number("-1.5"), Some(-1.5));
        assert_eq!(parse_number("10e3"), Some(10000.0));
        assert_eq!(parse_number("10e-3"), Some(0.01));
        assert_eq!(parse_number("1e+3"), Some(1000.0));
        assert_eq!(parse_number("55.5"), Some(55.5));
        assert_eq!(parse_number(".5"), Some(0.5));
        for bad in [
            "", "-", "e3", "1e", "1e+", "abc", "1.2.3", "0x10", "inf", "NaN", " 1", "1 ",
        ] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
        assert_eq!(parse_number("1e999"), None);
    }

    #[test]
    fn globs_only_use_leading_and_trailing_stars() {
        assert!(Glob::new("*Event").matches("PutEvent"));
        assert!(Glob::new("Event*").matches("EventName"));
        assert!(Glob::new("*html*").matches("GET /index.html HTTP/1.0"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("**").matches("anything"));
        assert!(!Glob::new("Ev*ent").matches("Event"));
        assert!(Glob::new("Ev*ent").matches("Ev*ent"));
        assert!(!Glob::new("err").matches("error"));
    }

    #[test]
    fn number_values_fall_back_to_text_for_equality() {
        let v = Value::Number {
            value: 200.0,
            text: "200".to_string(),
        };
        assert!(v.test(CmpOp::Eq, "200.0", Some(200.0)));
        assert!(v.test(CmpOp::Ne, "-", None));
        assert!(!v.test(CmpOp::Eq, "-", None));
        assert!(!v.test(CmpOp::Gt, "-", None));
    }
}
