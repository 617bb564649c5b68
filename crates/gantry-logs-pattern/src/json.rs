//! JSON patterns: `{ SELECTOR OPERATOR VALUE }` conditions combined with `&&`, `||`
//! and parentheses, evaluated against log events that are JSON objects.
//!
//! * Selectors start at `$` and use `.name`, `[index]`, `['key with.dots']`, and the
//!   wildcards `.*` / `[*]` (any object member or array element; at most one per
//!   selector and three per pattern, the documented quotas).
//! * A selector picks value nodes. A comparison holds when some picked node is a
//!   string or a number that satisfies it; objects, arrays, booleans, `null` and
//!   missing properties satisfy no comparison, not even `!=`.
//! * Numbers compare numerically (a string node holding a number counts as that
//!   number); strings compare with `=`/`!=`, optionally with leading or trailing `*`
//!   wildcards or as a `%regex%`.
//! * `IS TRUE`, `IS FALSE`, `IS NULL` test booleans and null; `NOT EXISTS` holds when
//!   the selector picks nothing. `IS NOT` and `EXISTS` are rejected, as by AWS.
//! * A message that is not a JSON object matches no JSON pattern.

use serde_json::Value as Json;

use crate::parse::{lex, Expr, LeafParser, Parser, TokKind};
use crate::value::{parse_number, CmpOp, Value};
use crate::PatternError;

/// Maximum number of selectors using a wildcard in one pattern.
const MAX_WILDCARD_SELECTORS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
    Wildcard,
}

#[derive(Debug, Clone)]
struct Selector {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
enum Test {
    Compare(CmpOp, Value),
    IsTrue,
    IsFalse,
    IsNull,
    NotExists,
}

#[derive(Debug, Clone)]
struct Condition {
    selector: Selector,
    test: Test,
}

/// A compiled JSON pattern.
#[derive(Debug, Clone)]
pub(crate) struct JsonPattern {
    expr: Expr<Condition>,
}

impl JsonPattern {
    /// Parses `pattern[start..end]`, a trimmed pattern that starts with `{`.
    pub(crate) fn parse(
        pattern: &str,
        start: usize,
        end: usize,
    ) -> Result<JsonPattern, PatternError> {
        let text = pattern.get(start..end).unwrap_or("");
        if text.len() < 2 || !text.ends_with('}') {
            return Err(PatternError::new(
                "if a filter pattern starts with '{' it must end with '}'",
            ));
        }
        let end = end - 1;
        let toks = lex(pattern, start + 1, end)?;
        if toks.is_empty() {
            return Err(PatternError::new("empty JSON filter pattern '{ }'"));
        }
        let mut parser = Parser::new(pattern, &toks, end);
        let expr = parser.expr(&mut JsonLeaves)?;
        if !parser.at_end() {
            return Err(parser.unexpected("'&&', '||' or the closing '}'"));
        }
        let wildcard_selectors = expr
            .leaves()
            .iter()
            .filter(|c| c.selector.segments.contains(&Segment::Wildcard))
            .count();
        if wildcard_selectors > MAX_WILDCARD_SELECTORS {
            return Err(PatternError::new(format_args!(
                "a JSON filter pattern can use at most {MAX_WILDCARD_SELECTORS} selectors \
                 with a wildcard, found {wildcard_selectors}"
            )));
        }
        Ok(JsonPattern { expr })
    }

    pub(crate) fn matches(&self, message: &str) -> bool {
        let root: Json = match serde_json::from_str(message) {
            Ok(root @ Json::Object(_)) => root,
            _ => return false,
        };
        self.expr.eval(&mut |c: &Condition| c.holds(&root))
    }
}

impl Condition {
    fn holds(&self, root: &Json) -> bool {
        let nodes = self.selector.select(root);
        match &self.test {
            Test::NotExists => nodes.is_empty(),
            Test::IsNull => nodes.iter().any(|n| n.is_null()),
            Test::IsTrue => nodes.iter().any(|n| n.as_bool() == Some(true)),
            Test::IsFalse => nodes.iter().any(|n| n.as_bool() == Some(false)),
            Test::Compare(op, value) => nodes.iter().any(|n| match n {
                Json::String(s) => value.test(*op, s, parse_number(s)),
                Json::Number(num) => value.test(*op, &num.to_string(), num.as_f64()),
                _ => false,
            }),
        }
    }
}

impl Selector {
    /// The nodes the selector picks from `root`.
    fn select<'v>(&self, root: &'v Json) -> Vec<&'v Json> {
        let mut nodes = vec![root];
        for segment in &self.segments {
            let mut picked = Vec::new();
            for node in nodes {
                match (segment, node) {
                    (Segment::Key(k), Json::Object(map)) => picked.extend(map.get(k)),
                    (Segment::Index(i), Json::Array(items)) => picked.extend(items.get(*i)),
                    (Segment::Wildcard, Json::Object(map)) => picked.extend(map.values()),
                    (Segment::Wildcard, Json::Array(items)) => picked.extend(items.iter()),
                    _ => {}
                }
            }
            nodes = picked;
        }
        nodes
    }

    /// Parses the selector `text`, which starts at byte offset `start` of `pattern`.
    fn parse(pattern: &str, start: usize, text: &str) -> Result<Selector, PatternError> {
        let chars: Vec<(usize, char)> = text.char_indices().map(|(i, c)| (start + i, c)).collect();
        let ch = |i: usize| chars.get(i).map(|&(_, c)| c);
        let err = |i: usize, what: &str| {
            let at = chars.get(i).map_or(start + text.len(), |&(o, _)| o);
            PatternError::at(pattern, at, format_args!("{what} in selector '{text}'"))
        };
        if chars.len() == 1 {
            return Err(err(0, "empty property selector (use '$.name')"));
        }
        let mut segments = Vec::new();
        let mut i = 1;
        while let Some(c) = ch(i) {
            match c {
                '.' if ch(i + 1) == Some('*') => {
                    segments.push(Segment::Wildcard);
                    i += 2;
                }
                '.' if ch(i + 1) == Some('[') => i += 1,
                '.' => {
                    let name_start = i + 1;
                    let mut j = name_start;
                    while ch(j).is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-') {
                        j += 1;
                    }
                    if j == name_start {
                        return Err(err(name_start, "expected a property name"));
                    }
                    let name = chars
                        .get(name_start..j)
                        .unwrap_or(&[])
                        .iter()
                        .map(|&(_, c)| c);
                    segments.push(Segment::Key(name.collect()));
                    i = j;
                }
                '[' => {
                    let close = (i + 1..chars.len())
                        .find(|&j| ch(j) == Some(']') && bracket_closes(&chars, i, j))
                        .ok_or_else(|| err(i, "unterminated '['"))?;
                    let inner: String = chars
                        .get(i + 1..close)
                        .unwrap_or(&[])
                        .iter()
                        .map(|&(_, c)| c)
                        .collect();
                    segments.push(bracket_segment(inner.trim()).ok_or_else(|| {
                        err(
                            i,
                            "expected an array index, '*' or a quoted key inside '[...]'",
                        )
                    })?);
                    i = close + 1;
                }
                _ => return Err(err(i, &format!("unexpected character '{c}'"))),
            }
        }
        if segments.iter().filter(|s| **s == Segment::Wildcard).count() > 1 {
            return Err(err(0, "only one wildcard is allowed"));
        }
        Ok(Selector { segments })
    }
}

/// Whether the `]` at `close` closes the `[` at `open` (quotes inside are skipped).
fn bracket_closes(chars: &[(usize, char)], open: usize, close: usize) -> bool {
    let mut quote: Option<char> = None;
    for &(_, c) in chars.get(open + 1..close).unwrap_or(&[]) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == ']' => return false,
            None => {}
        }
    }
    quote.is_none()
}

fn bracket_segment(inner: &str) -> Option<Segment> {
    if inner == "*" {
        return Some(Segment::Wildcard);
    }
    if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
        return inner.parse::<usize>().ok().map(Segment::Index);
    }
    let quote = inner.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let key = inner.strip_prefix(quote)?.strip_suffix(quote)?;
    (!key.contains(quote)).then(|| Segment::Key(key.to_string()))
}

/// Parses `SELECTOR (OP VALUE | IS TRUE|FALSE|NULL | NOT EXISTS)`.
struct JsonLeaves;

impl LeafParser for JsonLeaves {
    type Leaf = Condition;

    fn leaf(&mut self, p: &mut Parser<'_>) -> Result<Condition, PatternError> {
        let selector = match p.peek() {
            Some(tok) => match &tok.kind {
                TokKind::Selector(s) => Selector::parse(p.pattern, tok.start, s)?,
                _ => return Err(p.unexpected("a property selector starting with '$.'")),
            },
            None => return Err(p.unexpected("a property selector starting with '$.'")),
        };
        p.next();
        let keyword = |p: &Parser<'_>| match p.peek().map(|t| &t.kind) {
            Some(TokKind::Word(w)) => Some(w.to_ascii_uppercase()),
            _ => None,
        };
        let test = match keyword(p).as_deref() {
            Some("IS") => {
                p.next();
                let test = match keyword(p).as_deref() {
                    Some("TRUE") => Test::IsTrue,
                    Some("FALSE") => Test::IsFalse,
                    Some("NULL") => Test::IsNull,
                    Some("NOT") => return Err(p.err("'IS NOT' is not supported")),
                    _ => return Err(p.unexpected("TRUE, FALSE or NULL after IS")),
                };
                p.next();
                test
            }
            Some("NOT") => {
                p.next();
                if keyword(p).as_deref() != Some("EXISTS") {
                    return Err(p.unexpected("EXISTS after NOT"));
                }
                p.next();
                Test::NotExists
            }
            Some("EXISTS") => {
                return Err(p.err(
                    "'EXISTS' is not supported (use NOT EXISTS, or '= *' to require a value)",
                ))
            }
            _ => {
                let op = p.op()?;
                Test::Compare(op, p.value(op)?)
            }
        };
        Ok(Condition { selector, test })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(s: &str) -> Vec<Segment> {
        Selector::parse(s, 0, s).unwrap().segments
    }

    #[test]
    fn selector_syntax() {
        use Segment::*;
        assert_eq!(
            segments("$.a.b-c_d"),
            vec![Key("a".into()), Key("b-c_d".into())]
        );
        assert_eq!(
            segments("$.a[0][12]"),
            vec![Key("a".into()), Index(0), Index(12)]
        );
        assert_eq!(
            segments("$.['x.y'][\"z]\"]"),
            vec![Key("x.y".into()), Key("z]".into())]
        );
        assert_eq!(segments("$.*"), vec![Wildcard]);
        assert_eq!(
            segments("$.a[*].b"),
            vec![Key("a".into()), Wildcard, Key("b".into())]
        );
    }

    #[test]
    fn selector_errors() {
        for s in [
            "$", "$.", "$..a", "$.a[x]", "$.a[-1]", "$.a[0:2]", "$.*[*]", "$.a$", "$.a[]",
        ] {
            assert!(Selector::parse(s, 0, s).is_err(), "{s}");
        }
        let e = Selector::parse(
            "$.a[99999999999999999999999]",
            0,
            "$.a[99999999999999999999999]",
        );
        assert!(e.is_err());
    }
}
