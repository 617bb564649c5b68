//! Lexer and expression parser shared by JSON (`{ ... }`) and space-delimited
//! (`[ ... ]`) patterns, producing the boolean expression AST both evaluate.
//!
//! Grammar of a condition expression (`&&` binds tighter than `||`):
//!
//! ```text
//! expr    := and ( "||" and )*
//! and     := primary ( "&&" primary )*
//! primary := "(" expr ")" | leaf
//! value   := NUMBER | WORD | "quoted string" | %regex%
//! ```
//!
//! What a `leaf` is depends on the pattern kind (a JSON selector test, or a field
//! comparison), so leaves are parsed by a [`LeafParser`] supplied by the caller.

use crate::regex::Regex;
use crate::value::{parse_number, CmpOp, Glob, Value};
use crate::PatternError;

/// Maximum nesting depth of parentheses.
const MAX_DEPTH: usize = 64;
/// Maximum number of `%regex%` values in one JSON or space-delimited pattern.
pub(crate) const MAX_REGEXES: usize = 2;

/// A token of a JSON or space-delimited pattern body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokKind {
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Op(CmpOp),
    /// A JSON property selector such as `$.a.b[0]`, as written.
    Selector(String),
    /// A double-quoted string, unescaped.
    Quoted(String),
    /// A `%regex%`; `body_start` is the byte offset of the text after the first `%`.
    Regex {
        body_start: usize,
        body: String,
    },
    /// Any other run of characters: names, numbers, unquoted strings, keywords.
    Word(String),
}

/// A token with the byte range it covers in the whole pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tok {
    pub(crate) kind: TokKind,
    pub(crate) start: usize,
}

impl Tok {
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            TokKind::LParen => "'('".into(),
            TokKind::RParen => "')'".into(),
            TokKind::Comma => "','".into(),
            TokKind::And => "'&&'".into(),
            TokKind::Or => "'||'".into(),
            TokKind::Op(op) => format!("'{}'", op.symbol()),
            TokKind::Selector(s) | TokKind::Word(s) => format!("'{s}'"),
            TokKind::Quoted(s) => format!("\"{s}\""),
            TokKind::Regex { body, .. } => format!("%{body}%"),
        }
    }
}

/// Characters that end an unquoted word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || "()\",=!<>&|%".contains(c)
}

/// Characters allowed in the unbracketed part of a selector.
fn selector_char(c: char) -> bool {
    c.is_alphanumeric() || "_-.*$".contains(c)
}

/// Splits `pattern[start..end]` into tokens; offsets are relative to `pattern`.
pub(crate) fn lex(pattern: &str, start: usize, end: usize) -> Result<Vec<Tok>, PatternError> {
    let body = pattern.get(start..end).unwrap_or("");
    let chars: Vec<(usize, char)> = body.char_indices().map(|(i, c)| (start + i, c)).collect();
    let at = |i: usize| chars.get(i).map_or(end, |&(o, _)| o);
    let ch = |i: usize| chars.get(i).map(|&(_, c)| c);
    let err = |i: usize, what: &str| PatternError::at(pattern, at(i), what);
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(c) = ch(i) {
        let tok_start = at(i);
        let push = |kind, toks: &mut Vec<Tok>| {
            toks.push(Tok {
                kind,
                start: tok_start,
            })
        };
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | ',' => {
                let kind = match c {
                    '(' => TokKind::LParen,
                    ')' => TokKind::RParen,
                    _ => TokKind::Comma,
                };
                push(kind, &mut toks);
                i += 1;
            }
            '&' | '|' => {
                if ch(i + 1) != Some(c) {
                    return Err(err(i, &format!("single '{c}' (use '{c}{c}')")));
                }
                push(if c == '&' { TokKind::And } else { TokKind::Or }, &mut toks);
                i += 2;
            }
            '=' => {
                if ch(i + 1) == Some('=') {
                    return Err(err(i, "'==' is not an operator (use '=')"));
                }
                push(TokKind::Op(CmpOp::Eq), &mut toks);
                i += 1;
            }
            '!' => {
                if ch(i + 1) != Some('=') {
                    return Err(err(i, "'!' must be followed by '='"));
                }
                if ch(i + 2) == Some('=') {
                    return Err(err(i, "'!==' is not an operator (use '!=')"));
                }
                push(TokKind::Op(CmpOp::Ne), &mut toks);
                i += 2;
            }
            '<' | '>' => {
                let with_eq = ch(i + 1) == Some('=');
                let op = match (c, with_eq) {
                    ('<', false) => CmpOp::Lt,
                    ('<', true) => CmpOp::Le,
                    (_, false) => CmpOp::Gt,
                    (_, true) => CmpOp::Ge,
                };
                push(TokKind::Op(op), &mut toks);
                i += if with_eq { 2 } else { 1 };
            }
            '"' => {
                let (text, next) =
                    quoted(&chars, i).ok_or_else(|| err(i, "unterminated quoted string"))?;
                push(TokKind::Quoted(text), &mut toks);
                i = next;
            }
            '%' => {
                let close = (i + 1..chars.len())
                    .find(|&j| ch(j) == Some('%'))
                    .ok_or_else(|| {
                        err(i, "unterminated regular expression (missing closing '%')")
                    })?;
                let body_start = at(i + 1);
                let body = pattern.get(body_start..at(close)).unwrap_or("").to_string();
                push(TokKind::Regex { body_start, body }, &mut toks);
                i = close + 1;
            }
            '$' => {
                let mut j = i;
                while let Some(c) = ch(j) {
                    if c == '[' {
                        j = bracket_end(&chars, j)
                            .ok_or_else(|| err(j, "unterminated '[' in selector"))?;
                    } else if selector_char(c) {
                        j += 1;
                    } else {
                        break;
                    }
                }
                let text = pattern.get(tok_start..at(j)).unwrap_or("").to_string();
                push(TokKind::Selector(text), &mut toks);
                i = j;
            }
            _ => {
                let mut j = i;
                while ch(j).is_some_and(|c| !ends_word(c)) {
                    j += 1;
                }
                let text = pattern.get(tok_start..at(j)).unwrap_or("").to_string();
                push(TokKind::Word(text), &mut toks);
                i = j;
            }
        }
    }
    Ok(toks)
}

/// Reads a double-quoted string starting at `chars[i]` (the opening quote); `\"` and
/// `\\` are escapes, other backslashes are kept. Returns the text and the index after
/// the closing quote.
pub(crate) fn quoted(chars: &[(usize, char)], i: usize) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut j = i + 1;
    loop {
        match chars.get(j).map(|&(_, c)| c)? {
            '"' => return Some((text, j + 1)),
            '\\' => match chars.get(j + 1).map(|&(_, c)| c) {
                Some(c @ ('"' | '\\')) => {
                    text.push(c);
                    j += 2;
                }
                _ => {
                    text.push('\\');
                    j += 1;
                }
            },
            c => {
                text.push(c);
                j += 1;
            }
        }
    }
}

/// Index just past the `]` closing the `[` at `chars[i]`, skipping quoted keys.
fn bracket_end(chars: &[(usize, char)], i: usize) -> Option<usize> {
    let mut j = i + 1;
    let mut quote: Option<char> = None;
    loop {
        let c = chars.get(j).map(|&(_, c)| c)?;
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == ']' => return Some(j + 1),
            None => {}
        }
        j += 1;
    }
}

/// A boolean combination of leaf conditions.
#[derive(Debug, Clone)]
pub(crate) enum Expr<C> {
    Leaf(C),
    All(Vec<Expr<C>>),
    Any(Vec<Expr<C>>),
}

impl<C> Expr<C> {
    /// Evaluates the expression, testing leaves with `test` (short-circuiting).
    pub(crate) fn eval(&self, test: &mut impl FnMut(&C) -> bool) -> bool {
        match self {
            Expr::Leaf(c) => test(c),
            Expr::All(items) => items.iter().all(|e| e.eval(test)),
            Expr::Any(items) => items.iter().any(|e| e.eval(test)),
        }
    }

    /// Every leaf, in order.
    pub(crate) fn leaves(&self) -> Vec<&C> {
        let mut out = Vec::new();
        self.collect(false, &mut out);
        out
    }

    /// The leaves that must hold for the whole expression to hold (those reached
    /// only through `&&`).
    pub(crate) fn required_leaves(&self) -> Vec<&C> {
        let mut out = Vec::new();
        self.collect(true, &mut out);
        out
    }

    fn collect<'a>(&'a self, only_required: bool, out: &mut Vec<&'a C>) {
        match self {
            Expr::Leaf(c) => out.push(c),
            Expr::All(items) => items.iter().for_each(|e| e.collect(only_required, out)),
            Expr::Any(items) if items.len() == 1 || !only_required => {
                items.iter().for_each(|e| e.collect(only_required, out))
            }
            Expr::Any(_) => {}
        }
    }
}

/// Parses the leaves of an expression.
pub(crate) trait LeafParser {
    type Leaf;
    fn leaf(&mut self, p: &mut Parser<'_>) -> Result<Self::Leaf, PatternError>;
}

/// A cursor over tokens with expression parsing helpers.
pub(crate) struct Parser<'a> {
    pub(crate) pattern: &'a str,
    toks: &'a [Tok],
    pos: usize,
    end: usize,
    depth: usize,
    regexes: usize,
}

impl<'a> Parser<'a> {
    /// `end` is the byte offset reported for errors at the end of the tokens.
    pub(crate) fn new(pattern: &'a str, toks: &'a [Tok], end: usize) -> Self {
        Parser {
            pattern,
            toks,
            pos: 0,
            end,
            depth: 0,
            regexes: 0,
        }
    }

    pub(crate) fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.pos)
    }

    pub(crate) fn next(&mut self) -> Option<&'a Tok> {
        let t = self.toks.get(self.pos);
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    /// Number of `%regex%` values parsed so far.
    pub(crate) fn regex_count(&self) -> usize {
        self.regexes
    }

    /// Counts `used` regular expressions as already parsed (for the per-pattern quota).
    pub(crate) fn set_regex_count(&mut self, used: usize) {
        self.regexes = used;
    }

    /// An error at the current token (or at the end).
    pub(crate) fn err(&self, what: impl std::fmt::Display) -> PatternError {
        let at = self.peek().map_or(self.end, |t| t.start);
        PatternError::at(self.pattern, at, what)
    }

    /// An error for an unexpected current token (or the end).
    pub(crate) fn unexpected(&self, expected: &str) -> PatternError {
        match self.peek() {
            Some(t) => self.err(format_args!(
                "expected {expected} but found {}",
                t.describe()
            )),
            None => self.err(format_args!("expected {expected} but the pattern ended")),
        }
    }

    /// Parses `expr` (see the module documentation).
    pub(crate) fn expr<L: LeafParser>(
        &mut self,
        leaf: &mut L,
    ) -> Result<Expr<L::Leaf>, PatternError> {
        let mut any = vec![self.and(leaf)?];
        while matches!(
            self.peek(),
            Some(Tok {
                kind: TokKind::Or,
                ..
            })
        ) {
            self.pos += 1;
            any.push(self.and(leaf)?);
        }
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            Expr::Any(any)
        })
    }

    fn and<L: LeafParser>(&mut self, leaf: &mut L) -> Result<Expr<L::Leaf>, PatternError> {
        let mut all = vec![self.primary(leaf)?];
        while matches!(
            self.peek(),
            Some(Tok {
                kind: TokKind::And,
                ..
            })
        ) {
            self.pos += 1;
            all.push(self.primary(leaf)?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Expr::All(all)
        })
    }

    fn primary<L: LeafParser>(&mut self, leaf: &mut L) -> Result<Expr<L::Leaf>, PatternError> {
        if !matches!(
            self.peek(),
            Some(Tok {
                kind: TokKind::LParen,
                ..
            })
        ) {
            return Ok(Expr::Leaf(leaf.leaf(self)?));
        }
        if self.depth >= MAX_DEPTH {
            return Err(self.err("parentheses are nested too deeply"));
        }
        let open = self.peek().map_or(self.end, |t| t.start);
        self.pos += 1;
        self.depth += 1;
        let inner = self.expr(leaf)?;
        self.depth -= 1;
        match self.next() {
            Some(Tok {
                kind: TokKind::RParen,
                ..
            }) => Ok(inner),
            Some(_) => {
                self.pos -= 1;
                Err(self.unexpected("'&&', '||' or ')'"))
            }
            None => Err(PatternError::at(
                self.pattern,
                open,
                "unbalanced '(' (missing ')')",
            )),
        }
    }

    /// Parses a comparison operator.
    pub(crate) fn op(&mut self) -> Result<CmpOp, PatternError> {
        match self.peek() {
            Some(Tok {
                kind: TokKind::Op(op),
                ..
            }) => {
                self.pos += 1;
                Ok(*op)
            }
            _ => Err(self.unexpected("a comparison operator (=, !=, <, <=, >, >=)")),
        }
    }

    /// Parses the value after operator `op` and checks that they fit together.
    pub(crate) fn value(&mut self, op: CmpOp) -> Result<Value, PatternError> {
        let what = format!("a value after '{}'", op.symbol());
        let Some(tok) = self.peek() else {
            return Err(self.unexpected(&what));
        };
        let value = match &tok.kind {
            TokKind::Quoted(s) => Value::Text(Glob::new(s)),
            TokKind::Word(w) => match parse_number(w) {
                Some(value) => Value::Number {
                    value,
                    text: w.clone(),
                },
                None => Value::Text(Glob::new(w)),
            },
            TokKind::Regex { body_start, body } => {
                if self.regexes >= MAX_REGEXES {
                    return Err(self.err(format_args!(
                        "a JSON or space-delimited pattern can contain at most {MAX_REGEXES} regular expressions"
                    )));
                }
                self.regexes += 1;
                Value::Regex(Regex::parse(self.pattern, *body_start, body)?)
            }
            _ => return Err(self.unexpected(&what)),
        };
        if op.is_ordering() && !matches!(value, Value::Number { .. }) {
            return Err(self.err(format_args!("operator '{}' requires a number", op.symbol())));
        }
        self.pos += 1;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<TokKind> {
        lex(s, 0, s.len())
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn lexes_operators_values_and_selectors() {
        use TokKind::*;
        assert_eq!(
            kinds(r#"$.a['b c'][0] >= -1e3 && x!="q\"uote" || (y=%a|b%)"#),
            vec![
                Selector("$.a['b c'][0]".into()),
                Op(CmpOp::Ge),
                Word("-1e3".into()),
                And,
                Word("x".into()),
                Op(CmpOp::Ne),
                Quoted("q\"uote".into()),
                Or,
                LParen,
                Word("y".into()),
                Op(CmpOp::Eq),
                Regex {
                    body_start: 45,
                    body: "a|b".into()
                },
                RParen,
            ]
        );
        assert_eq!(
            kinds("..., a=*.html*,"),
            vec![
                Word("...".into()),
                Comma,
                Word("a".into()),
                Op(CmpOp::Eq),
                Word("*.html*".into()),
                Comma
            ]
        );
    }

    #[test]
    fn lexer_errors() {
        for (s, what) in [
            ("a & b", "single '&'"),
            ("a | b", "single '|'"),
            ("a == b", "'=='"),
            ("a !== b", "'!=='"),
            ("!a", "'!' must"),
            ("a = \"open", "unterminated quoted"),
            ("a = %open", "unterminated regular"),
            ("$.a['x = 1", "unterminated '['"),
        ] {
            let e = lex(s, 0, s.len()).unwrap_err().message;
            assert!(e.contains(what), "{s}: {e}");
        }
    }
}
