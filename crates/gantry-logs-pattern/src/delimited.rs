//! Space-delimited patterns such as `[ip, user, ..., status = 4* || status = 5*, size]`.
//!
//! The message is split into fields at runs of whitespace; text between double quotes
//! or between square brackets counts as one field (without the quotes/brackets). The
//! pattern lists named fields, separated by commas, each optionally with a condition
//! on that field (`=`, `!=`, `<`, `<=`, `>`, `>=`, combined with `&&`, `||` and
//! parentheses). An empty entry (`[a,,b]`, or a trailing comma) is an unnamed field.
//!
//! Field counts, following the AWS examples (`[w1=ERROR, w2]` matches any event whose
//! first word is `ERROR`, and a trailing "blank indicator" is required):
//!
//! * with an ellipsis `...` (at most one, anywhere), the fields before it match the
//!   first message fields, those after it the last ones, and the ellipsis absorbs any
//!   number (zero or more) of fields in between;
//! * without an ellipsis, the last pattern field receives the rest of the message
//!   (from its field to the end, verbatim) when the message has more fields;
//! * a message with fewer fields than the pattern names never matches.

use crate::parse::{lex, Expr, LeafParser, Parser, Tok, TokKind};
use crate::value::{parse_number, CmpOp, Value};
use crate::PatternError;

#[derive(Debug, Clone)]
struct Condition {
    name: String,
    op: CmpOp,
    value: Value,
}

#[derive(Debug, Clone)]
struct Field {
    condition: Option<Expr<Condition>>,
}

impl Field {
    fn accepts(&self, text: &str) -> bool {
        let number = parse_number(text);
        self.condition
            .as_ref()
            .is_none_or(|e| e.eval(&mut |c: &Condition| c.value.test(c.op, text, number)))
    }
}

/// A compiled space-delimited pattern.
#[derive(Debug, Clone)]
pub(crate) struct DelimitedPattern {
    /// The pattern fields, without the ellipsis.
    fields: Vec<Field>,
    /// Index in `fields` before which the ellipsis stands, if any.
    ellipsis: Option<usize>,
}

impl DelimitedPattern {
    /// Parses `pattern[start..end]`, a trimmed pattern that starts with `[`.
    pub(crate) fn parse(
        pattern: &str,
        start: usize,
        end: usize,
    ) -> Result<DelimitedPattern, PatternError> {
        let text = pattern.get(start..end).unwrap_or("");
        if text.len() < 2 || !text.ends_with(']') {
            return Err(PatternError::new(
                "if a filter pattern starts with '[' it must end with ']'",
            ));
        }
        let end = end - 1;
        let toks = lex(pattern, start + 1, end)?;
        let mut fields = Vec::new();
        let mut ellipsis = None;
        let mut names: Vec<String> = Vec::new();
        let mut regexes = 0;
        if toks.is_empty() {
            return Ok(DelimitedPattern { fields, ellipsis });
        }
        let mut group_start = start + 1;
        for group in toks.split(|t| t.kind == TokKind::Comma) {
            let group_end = group_end(&toks, group, end);
            match group {
                [] => fields.push(Field { condition: None }),
                [Tok {
                    kind: TokKind::Word(w),
                    start,
                }] if w == "..." => {
                    if ellipsis.is_some() {
                        return Err(PatternError::at(
                            pattern,
                            *start,
                            "only one ellipsis '...' is allowed",
                        ));
                    }
                    ellipsis = Some(fields.len());
                }
                [Tok {
                    kind: TokKind::Word(w),
                    start,
                }] => {
                    check_name(pattern, *start, w)?;
                    add_name(pattern, *start, w, &mut names)?;
                    fields.push(Field { condition: None });
                }
                _ => {
                    let mut parser = Parser::new(pattern, group, group_end);
                    parser.set_regex_count(regexes);
                    let expr = parser.expr(&mut FieldLeaves)?;
                    if !parser.at_end() {
                        return Err(parser.unexpected("'&&', '||', ',' or the closing ']'"));
                    }
                    regexes = parser.regex_count();
                    let leaves = expr.leaves();
                    let Some(first) = leaves.first() else {
                        return Err(PatternError::at(pattern, group_start, "empty field"));
                    };
                    if let Some(other) = leaves.iter().find(|c| c.name != first.name) {
                        return Err(PatternError::at(
                            pattern,
                            group.first().map_or(group_start, |t| t.start),
                            format_args!(
                                "the conditions of field '{}' refer to '{}'; a condition can \
                                 only test the field it is written in",
                                first.name, other.name
                            ),
                        ));
                    }
                    let start = group.first().map_or(group_start, |t| t.start);
                    add_name(pattern, start, &first.name, &mut names)?;
                    fields.push(Field {
                        condition: Some(expr),
                    });
                }
            }
            group_start = group_end;
        }
        Ok(DelimitedPattern { fields, ellipsis })
    }

    pub(crate) fn matches(&self, message: &str) -> bool {
        if self.fields.is_empty() {
            return true;
        }
        let words = split_fields(message);
        let n = self.fields.len();
        if words.len() < n {
            return false;
        }
        let text = |i: usize| words.get(i).map_or("", |w| w.text);
        match self.ellipsis {
            Some(at) => {
                let (before, after) = self.fields.split_at(at.min(n));
                let skip = words.len() - n;
                before.iter().enumerate().all(|(i, f)| f.accepts(text(i)))
                    && after
                        .iter()
                        .enumerate()
                        .all(|(j, f)| f.accepts(text(at + skip + j)))
            }
            None => {
                let (last, init) = match self.fields.split_last() {
                    Some(split) => split,
                    None => return true,
                };
                let rest = if words.len() == n {
                    text(n - 1)
                } else {
                    let from = words.get(n - 1).map_or(message.len(), |w| w.start);
                    message.get(from..).unwrap_or("").trim_end()
                };
                init.iter().enumerate().all(|(i, f)| f.accepts(text(i))) && last.accepts(rest)
            }
        }
    }

    /// Literals every matching message contains.
    pub(crate) fn required_literals(&self) -> Vec<String> {
        let mut out = Vec::new();
        for expr in self.fields.iter().filter_map(|f| f.condition.as_ref()) {
            for c in expr.required_leaves() {
                out.extend(c.value.required_literal(c.op).map(str::to_string));
            }
        }
        out
    }
}

/// Byte offset just past a comma-separated token group (for end-of-group errors).
fn group_end(all: &[Tok], group: &[Tok], end: usize) -> usize {
    let next = group.last().and_then(|last| {
        let idx = all.iter().position(|t| std::ptr::eq(t, last))?;
        all.get(idx + 1).map(|t| t.start)
    });
    next.unwrap_or(end)
}

/// Field names are letters, digits, `_` and `-`, not starting with a digit or `-`.
fn check_name(pattern: &str, start: usize, name: &str) -> Result<(), PatternError> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(PatternError::at(
            pattern,
            start,
            format_args!("expected a field name (letters, digits and '_'), found '{name}'"),
        ))
    }
}

fn add_name(
    pattern: &str,
    start: usize,
    name: &str,
    names: &mut Vec<String>,
) -> Result<(), PatternError> {
    if names.iter().any(|n| n == name) {
        return Err(PatternError::at(
            pattern,
            start,
            format_args!("duplicate field name '{name}'"),
        ));
    }
    names.push(name.to_string());
    Ok(())
}

/// Parses `NAME OP VALUE`.
struct FieldLeaves;

impl LeafParser for FieldLeaves {
    type Leaf = Condition;

    fn leaf(&mut self, p: &mut Parser<'_>) -> Result<Condition, PatternError> {
        let name = match p.peek() {
            Some(Tok {
                kind: TokKind::Word(w),
                start,
            }) => {
                check_name(p.pattern, *start, w)?;
                w.clone()
            }
            _ => return Err(p.unexpected("a field name")),
        };
        p.next();
        let op = p.op()?;
        let value = p.value(op)?;
        Ok(Condition { name, op, value })
    }
}

/// One field of a message.
struct Word<'a> {
    /// Byte offset where the field starts (including an opening quote or bracket).
    start: usize,
    /// The field's text, without enclosing quotes or brackets.
    text: &'a str,
}

/// Splits a message into fields (see the module documentation).
fn split_fields(message: &str) -> Vec<Word<'_>> {
    let bytes = message.as_bytes();
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i).copied().is_some_and(is_space) {
            i += 1;
            continue;
        }
        let start = i;
        let close = match bytes.get(i) {
            Some(b'"') => closing(bytes, i + 1, b'"'),
            Some(b'[') => closing(bytes, i + 1, b']'),
            _ => None,
        };
        if let Some(close) = close {
            words.push(Word {
                start,
                text: message.get(start + 1..close).unwrap_or(""),
            });
            i = close + 1;
            continue;
        }
        while bytes.get(i).copied().is_some_and(|b| !is_space(b)) {
            i += 1;
        }
        words.push(Word {
            start,
            text: message.get(start..i).unwrap_or(""),
        });
    }
    words
}

/// Index of the first `close` byte at or after `from` (a backslash escapes a quote).
fn closing(bytes: &[u8], from: usize, close: u8) -> Option<usize> {
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' && close == b'"' {
            i += 2;
            continue;
        }
        if b == close {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(message: &str) -> Vec<&str> {
        split_fields(message).into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn quotes_and_brackets_make_single_fields() {
        assert_eq!(
            texts(r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /a b HTTP/1.0" 200 1534"#),
            vec![
                "127.0.0.1",
                "-",
                "frank",
                "10/Oct/2000:13:25:15 -0700",
                "GET /a b HTTP/1.0",
                "200",
                "1534"
            ]
        );
        assert_eq!(texts("  a \t b  "), vec!["a", "b"]);
        assert_eq!(
            texts(r#"x "say \"hi\" now" y"#),
            vec!["x", r#"say \"hi\" now"#, "y"]
        );
        assert_eq!(
            texts(r#"ERROR "unterminated words"#),
            vec!["ERROR", "\"unterminated", "words"]
        );
        assert_eq!(texts("[open bracket"), vec!["[open", "bracket"]);
        assert_eq!(texts(r#""""#), vec![""]);
        assert!(texts("").is_empty());
    }
}
