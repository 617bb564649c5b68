//! The small regular expression dialect CloudWatch Logs accepts between `%` signs.
//!
//! Supported, as documented: literals (ASCII letters, digits, space and the symbols
//! `: _ # = @ / ; , -`), `.`, character classes `[...]` / `[^...]` with ranges, the
//! escapes `\d \D \s \S \w \W \xhh` plus escaped operators, the quantifiers `? * +
//! {m} {m,} {,n} {m,n}`, the anchors `^` (start of an alternative) and `$` (end of an
//! alternative) and top-level alternation `|`. Parentheses, other symbols and
//! multi-byte characters are rejected, as CloudWatch does.
//!
//! Without groups every quantifier applies to a single character matcher, so a
//! pattern compiles to a linear chain of states that is simulated as an NFA: matching
//! takes `O(message length × pattern size)` time and cannot backtrack exponentially.

use crate::PatternError;

/// Upper bound of a `{m,n}` repetition count.
const MAX_REPEAT: u32 = 1000;
/// Upper bound of the number of NFA states of one alternative.
const MAX_STATES: usize = 2000;

/// Symbols (besides ASCII alphanumerics) that may appear literally.
const LITERAL_SYMBOLS: &str = ":_#=@/;,- ";
/// Operator characters.
const OPERATORS: &str = "^$?[]{}|\\*+.";

/// A compiled regular expression.
#[derive(Debug, Clone)]
pub(crate) struct Regex {
    branches: Vec<Branch>,
}

#[derive(Debug, Clone)]
struct Branch {
    anchored_start: bool,
    anchored_end: bool,
    states: Vec<State>,
}

#[derive(Debug, Clone)]
struct State {
    set: CharSet,
    rep: Rep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rep {
    /// Exactly once.
    One,
    /// Zero or one time.
    Opt,
    /// Zero or more times.
    Star,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shorthand {
    Digit,
    Space,
    Word,
}

impl Shorthand {
    fn contains(self, c: char) -> bool {
        match self {
            Shorthand::Digit => c.is_ascii_digit(),
            Shorthand::Space => matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'),
            Shorthand::Word => c.is_ascii_alphanumeric() || c == '_',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ClassItem {
    Range(char, char),
    Short(Shorthand, bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum CharSet {
    Any,
    Lit(char),
    Class {
        negated: bool,
        items: Vec<ClassItem>,
    },
}

impl CharSet {
    fn contains(&self, c: char) -> bool {
        match self {
            CharSet::Any => true,
            CharSet::Lit(l) => *l == c,
            CharSet::Class { negated, items } => {
                let hit = items.iter().any(|item| match item {
                    ClassItem::Range(lo, hi) => *lo <= c && c <= *hi,
                    ClassItem::Short(s, neg) => s.contains(c) != *neg,
                });
                hit != *negated
            }
        }
    }
}

/// One parsed escape sequence.
enum Escape {
    Char(char),
    Short(Shorthand, bool),
}

struct RegexParser<'a> {
    pattern: &'a str,
    chars: Vec<(usize, char)>,
    pos: usize,
    end: usize,
}

impl Regex {
    /// Parses `body` (the text between the `%` signs), which starts at byte offset
    /// `offset` of `pattern`; errors point into `pattern`.
    pub(crate) fn parse(pattern: &str, offset: usize, body: &str) -> Result<Regex, PatternError> {
        let chars: Vec<(usize, char)> = body.char_indices().map(|(i, c)| (offset + i, c)).collect();
        let end = offset + body.len();
        if chars.is_empty() {
            return Err(PatternError::at(
                pattern,
                offset,
                "empty regular expression",
            ));
        }
        for &(at, c) in &chars {
            check_char(pattern, at, c)?;
        }
        let mut parser = RegexParser {
            pattern,
            chars,
            pos: 0,
            end,
        };
        let mut branches = Vec::new();
        loop {
            branches.push(parser.branch()?);
            match parser.peek() {
                Some('|') => parser.pos += 1,
                _ => break,
            }
        }
        Ok(Regex { branches })
    }

    /// Returns `true` when the expression matches somewhere in `text`.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.branches.iter().any(|b| b.is_match(text))
    }
}

fn check_char(pattern: &str, at: usize, c: char) -> Result<(), PatternError> {
    if c.is_ascii_alphanumeric() || LITERAL_SYMBOLS.contains(c) || OPERATORS.contains(c) {
        return Ok(());
    }
    let what = if !c.is_ascii() {
        format!("multi-byte character '{c}' is not supported in a regular expression")
    } else if c == '(' || c == ')' {
        "parentheses are not supported in a regular expression".to_string()
    } else {
        format!(
            "character {:?} is not supported in a regular expression (use \\x{:02X})",
            c, c as u32
        )
    };
    Err(PatternError::at(pattern, at, what))
}

impl RegexParser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn offset(&self) -> usize {
        self.chars.get(self.pos).map_or(self.end, |&(i, _)| i)
    }

    fn err(&self, what: impl std::fmt::Display) -> PatternError {
        PatternError::at(self.pattern, self.offset(), what)
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Parses one alternative, stopping before a top-level `|` or at the end.
    fn branch(&mut self) -> Result<Branch, PatternError> {
        let start_offset = self.offset();
        let mut anchored_start = false;
        let mut anchored_end = false;
        if self.peek() == Some('^') {
            anchored_start = true;
            self.pos += 1;
        }
        // (matcher, min, max) atoms; max None = unbounded.
        let mut atoms: Vec<(CharSet, u32, Option<u32>, bool)> = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                '|' => break,
                '$' => {
                    self.pos += 1;
                    if !matches!(self.peek(), None | Some('|')) {
                        return Err(self.err(
                            "'$' is only supported at the end of a regular expression or alternative",
                        ));
                    }
                    anchored_end = true;
                }
                '^' => {
                    return Err(self.err(
                        "'^' is only supported at the start of a regular expression or alternative",
                    ))
                }
                '?' | '*' | '+' | '{' => {
                    let (min, max) = self.quantifier()?;
                    match atoms.last_mut() {
                        Some(atom) if !atom.3 => {
                            atom.1 = min;
                            atom.2 = max;
                            atom.3 = true;
                        }
                        Some(_) => return Err(self.err("nested quantifiers are not supported")),
                        None => return Err(self.err("quantifier without a preceding term")),
                    }
                    // A lazy modifier does not change whether a match exists.
                    if self.peek() == Some('?') {
                        self.pos += 1;
                    }
                }
                _ => {
                    let set = self.atom()?;
                    atoms.push((set, 1, Some(1), false));
                }
            }
        }
        if atoms.is_empty() && !anchored_start && !anchored_end {
            return Err(PatternError::at(
                self.pattern,
                start_offset,
                "empty alternative in regular expression",
            ));
        }
        let mut states = Vec::new();
        for (set, min, max, _) in atoms {
            for _ in 0..min {
                states.push(State {
                    set: set.clone(),
                    rep: Rep::One,
                });
            }
            match max {
                None => states.push(State {
                    set,
                    rep: Rep::Star,
                }),
                Some(max) => {
                    for _ in min..max {
                        states.push(State {
                            set: set.clone(),
                            rep: Rep::Opt,
                        });
                    }
                }
            }
            if states.len() > MAX_STATES {
                return Err(PatternError::at(
                    self.pattern,
                    start_offset,
                    "regular expression is too complex",
                ));
            }
        }
        Ok(Branch {
            anchored_start,
            anchored_end,
            states,
        })
    }

    /// Parses `?`, `*`, `+` or `{m,n}`; returns (min, max).
    fn quantifier(&mut self) -> Result<(u32, Option<u32>), PatternError> {
        let start = self.offset();
        match self.next() {
            Some('?') => Ok((0, Some(1))),
            Some('*') => Ok((0, None)),
            Some('+') => Ok((1, None)),
            _ => {
                let mut body = String::new();
                loop {
                    match self.next() {
                        Some('}') => break,
                        Some(c) if c.is_ascii_digit() || c == ',' || c == ' ' => body.push(c),
                        _ => {
                            return Err(PatternError::at(
                                self.pattern,
                                start,
                                "malformed {m,n} repetition in regular expression",
                            ))
                        }
                    }
                }
                let pattern = self.pattern;
                let bad = |what: &str| PatternError::at(pattern, start, what);
                let number = |s: &str| -> Result<Option<u32>, PatternError> {
                    let s = s.trim();
                    if s.is_empty() {
                        return Ok(None);
                    }
                    match s.parse::<u32>() {
                        Ok(n) if n <= MAX_REPEAT => Ok(Some(n)),
                        _ => Err(bad("repetition count in regular expression is too large")),
                    }
                };
                let (min, max) = match body.split_once(',') {
                    None => {
                        let n = number(&body)?
                            .ok_or_else(|| bad("empty {} repetition in regular expression"))?;
                        (n, Some(n))
                    }
                    Some((lo, hi)) => {
                        if hi.contains(',') {
                            return Err(bad("malformed {m,n} repetition in regular expression"));
                        }
                        (number(lo)?.unwrap_or(0), number(hi)?)
                    }
                };
                if let Some(max) = max {
                    if max < min {
                        return Err(bad("{m,n} repetition with n smaller than m"));
                    }
                }
                Ok((min, max))
            }
        }
    }

    /// Parses one character matcher: a literal, `.`, a class or an escape.
    fn atom(&mut self) -> Result<CharSet, PatternError> {
        match self.next() {
            Some('.') => Ok(CharSet::Any),
            Some('[') => self.class(),
            Some('\\') => Ok(match self.escape()? {
                Escape::Char(c) => CharSet::Lit(c),
                Escape::Short(s, neg) => CharSet::Class {
                    negated: false,
                    items: vec![ClassItem::Short(s, neg)],
                },
            }),
            Some(c) => Ok(CharSet::Lit(c)),
            None => Err(self.err("unexpected end of regular expression")),
        }
    }

    /// Parses the rest of a `[...]` class (the `[` is consumed).
    fn class(&mut self) -> Result<CharSet, PatternError> {
        let start = self.offset().saturating_sub(1);
        let mut negated = false;
        if self.peek() == Some('^') {
            negated = true;
            self.pos += 1;
        }
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let c = match self.next() {
                None => {
                    return Err(PatternError::at(
                        self.pattern,
                        start,
                        "unterminated character class '[' in regular expression",
                    ))
                }
                Some(']') if !first => break,
                Some(c) => c,
            };
            first = false;
            let lo = match c {
                '\\' => match self.escape()? {
                    Escape::Char(c) => c,
                    Escape::Short(s, neg) => {
                        items.push(ClassItem::Short(s, neg));
                        continue;
                    }
                },
                c => c,
            };
            // A range `lo-hi`, unless the '-' is the last character of the class.
            let is_range = self.peek() == Some('-')
                && self.chars.get(self.pos + 1).is_some_and(|&(_, c)| c != ']');
            if !is_range {
                items.push(ClassItem::Range(lo, lo));
                continue;
            }
            self.pos += 1; // the '-'
            let hi = match self.next() {
                Some('\\') => match self.escape()? {
                    Escape::Char(c) => c,
                    Escape::Short(..) => return Err(self.err("invalid range in character class")),
                },
                Some(c) => c,
                None => return Err(self.err("unterminated character class")),
            };
            if hi < lo {
                return Err(self.err("invalid range in character class (end before start)"));
            }
            items.push(ClassItem::Range(lo, hi));
        }
        Ok(CharSet::Class { negated, items })
    }

    /// Parses an escape sequence (the backslash is consumed).
    fn escape(&mut self) -> Result<Escape, PatternError> {
        let at = self.offset().saturating_sub(1);
        let pattern = self.pattern;
        let bad = |what: String| PatternError::at(pattern, at, what);
        let c = self
            .next()
            .ok_or_else(|| bad("trailing backslash in regular expression".to_string()))?;
        Ok(match c {
            'd' => Escape::Short(Shorthand::Digit, false),
            'D' => Escape::Short(Shorthand::Digit, true),
            's' => Escape::Short(Shorthand::Space, false),
            'S' => Escape::Short(Shorthand::Space, true),
            'w' => Escape::Short(Shorthand::Word, false),
            'W' => Escape::Short(Shorthand::Word, true),
            't' => Escape::Char('\t'),
            'n' => Escape::Char('\n'),
            'r' => Escape::Char('\r'),
            'x' => {
                let hex: String = (0..2).filter_map(|_| self.next()).collect();
                match u8::from_str_radix(&hex, 16) {
                    Ok(b) if hex.len() == 2 => Escape::Char(char::from(b)),
                    _ => return Err(bad("\\x must be followed by two hexadecimal digits".into())),
                }
            }
            c if OPERATORS.contains(c) || LITERAL_SYMBOLS.contains(c) => Escape::Char(c),
            c => {
                return Err(bad(format!(
                    "unsupported escape sequence \\{c} in regular expression"
                )))
            }
        })
    }
}

impl Branch {
    fn is_match(&self, text: &str) -> bool {
        let n = self.states.len();
        let mut current = Active::new(n + 1);
        let mut next = Active::new(n + 1);
        self.add(&mut current, 0);
        if current.contains(n) && !self.anchored_end {
            return true;
        }
        for c in text.chars() {
            next.clear();
            for &i in &current.list {
                if let Some(state) = self.states.get(i) {
                    if state.set.contains(c) {
                        let target = if state.rep == Rep::Star { i } else { i + 1 };
                        self.add(&mut next, target);
                    }
                }
            }
            if !self.anchored_start {
                self.add(&mut next, 0);
            }
            std::mem::swap(&mut current, &mut next);
            if current.contains(n) && !self.anchored_end {
                return true;
            }
            if current.list.is_empty() {
                return false;
            }
        }
        current.contains(n)
    }

    /// Adds state `i` and every state reachable from it without consuming input.
    fn add(&self, active: &mut Active, mut i: usize) {
        while active.insert(i) {
            match self.states.get(i) {
                Some(state) if state.rep != Rep::One => i += 1,
                _ => break,
            }
        }
    }
}

/// A set of active NFA states with O(1) insertion and cheap iteration.
struct Active {
    marks: Vec<bool>,
    list: Vec<usize>,
}

impl Active {
    fn new(size: usize) -> Self {
        Active {
            marks: vec![false; size],
            list: Vec::with_capacity(size),
        }
    }

    fn insert(&mut self, i: usize) -> bool {
        match self.marks.get_mut(i) {
            Some(mark) if !*mark => {
                *mark = true;
                self.list.push(i);
                true
            }
            _ => false,
        }
    }

    fn contains(&self, i: usize) -> bool {
        self.marks.get(i).copied().unwrap_or(false)
    }

    fn clear(&mut self) {
        for &i in &self.list {
            if let Some(mark) = self.marks.get_mut(i) {
                *mark = false;
            }
        }
        self.list.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(body: &str) -> Regex {
        Regex::parse(body, 0, body).unwrap()
    }

    fn err(body: &str) -> String {
        Regex::parse(body, 0, body).unwrap_err().message
    }

    #[test]
    fn quantifiers_expand_to_a_chain() {
        assert!(re("a{3,5}").is_match("xaaax"));
        assert!(!re("^a{3,5}$").is_match("aa"));
        assert!(!re("^a{3,5}$").is_match("aaaaaa"));
        assert!(re("^a{3,}$").is_match("aaaaaaaaa"));
        assert!(re("^a{,2}b$").is_match("b"));
        assert!(re("^a{ 2 , 3 }$").is_match("aaa"));
        assert!(re("^ab+?c$").is_match("abbc"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(re("[]a]").is_match("]"));
        assert!(re("^[a-c-]+$").is_match("ab-c"));
        assert!(re("^[^0-9]+$").is_match("abc"));
        assert!(!re("^[^0-9]+$").is_match("a1c"));
        assert!(re("[\\d\\s]").is_match(" "));
        assert!(re("\\x3A").is_match("key:value"));
        assert!(re("\\x28").is_match("f(x)"));
        assert!(re("^\\W$").is_match("!"));
    }

    #[test]
    fn rejected_constructs() {
        assert!(err("(ab)").contains("parentheses"));
        assert!(err("a!").contains("not supported"));
        assert!(err("café").contains("multi-byte"));
        assert!(err("\\p").contains("unsupported escape"));
        assert!(err("\\(").contains("parentheses"));
        assert!(err("a{3,").contains("malformed"));
        assert!(err("a{5,3}").contains("smaller"));
        assert!(err("a{99999}").contains("too large"));
        assert!(err("*a").contains("without a preceding"));
        assert!(err("a**").contains("nested"));
        assert!(err("a^b").contains("'^'"));
        assert!(err("a$b").contains("'$'"));
        assert!(err("a|").contains("empty alternative"));
        assert!(err("[abc").contains("unterminated"));
        assert!(err("[z-a]").contains("invalid range"));
        assert!(err("\\x4").contains("hexadecimal"));
    }

    #[test]
    fn no_exponential_blowup() {
        let r = re("a*a*a*a*a*a*a*a*a*a*b");
        let text = "a".repeat(5000);
        assert!(!r.is_match(&text));
    }
}
