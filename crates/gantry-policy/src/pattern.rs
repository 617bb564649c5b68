//! Wildcard patterns, policy variables and segment-wise ARN matching.
//!
//! A policy string is split once, at compile time, into [`Part`]s: literal
//! text, `*`, `?` and policy variables (`${aws:username}`). The result is
//! classified ([`Pat`]) so that the common shapes (`*`, an exact string, a
//! prefix followed by one trailing `*`) are matched without the general glob
//! loop. Nothing here allocates while matching.

use crate::Facts;

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Literal text.
    Lit(String),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
    /// A policy variable, resolved through [`Facts`] at evaluation time.
    Var {
        /// The lower-cased context key.
        key: String,
        /// The `${key, 'default'}` value used when the key is missing.
        default: Option<String>,
    },
}

/// How literal text is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fold {
    /// Case-sensitive.
    None,
    /// ASCII case-insensitive (actions). Policy text is stored lower-cased.
    Ascii,
    /// Unicode case-insensitive (`...IgnoreCase`, `Bool`). Policy text is
    /// stored lower-cased; only used without wildcards.
    Unicode,
}

/// The shape of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Matches everything.
    Any,
    /// Matches exactly this text.
    Exact(String),
    /// Matches text starting with this prefix.
    Prefix(String),
    /// Anything else (several wildcards, or variables).
    Parts(Box<[Part]>),
}

/// A compiled string pattern together with its comparison mode.
///
/// `head`/`mask` hold the first (up to eight) bytes of the pattern's literal
/// prefix, so that [`Pat::matches_head`] can reject most texts with one
/// integer comparison before looking at the text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pat {
    shape: Shape,
    fold: Fold,
    head: u64,
    mask: u64,
}

/// The first eight bytes of `text` (zero-padded) as an integer, ASCII
/// lower-cased when `fold` is [`Fold::Ascii`]; compare with [`Pat::matches_head`].
pub(crate) fn head_of(text: &str, fold: Fold) -> u64 {
    let mut bytes = [0u8; 8];
    for (slot, b) in bytes.iter_mut().zip(text.bytes()) {
        *slot = if fold == Fold::Ascii {
            b.to_ascii_lowercase()
        } else {
            b
        };
    }
    u64::from_le_bytes(bytes)
}

/// Options for [`Pat::compile`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Syntax {
    /// Whether `*` and `?` are wildcards (else literal characters).
    pub wildcards: bool,
    /// Whether `${...}` is a policy variable (Version 2012-10-17 only).
    pub variables: bool,
    /// How to compare.
    pub fold: Fold,
}

impl Pat {
    /// Compiles `text` under `syntax`.
    pub(crate) fn compile(text: &str, syntax: Syntax) -> Pat {
        let parts = tokenize(text, syntax);
        let shape = match parts.as_slice() {
            [] => Shape::Exact(String::new()),
            [Part::Star] => Shape::Any,
            [Part::Lit(s)] => Shape::Exact(s.clone()),
            [Part::Lit(s), Part::Star] => Shape::Prefix(s.clone()),
            _ => Shape::Parts(parts.into_boxed_slice()),
        };
        let prefix = match &shape {
            Shape::Any => "",
            Shape::Exact(s) | Shape::Prefix(s) => s,
            Shape::Parts(parts) => match parts.first() {
                Some(Part::Lit(s)) => s,
                _ => "",
            },
        };
        // Lower-casing beyond ASCII changes byte lengths: no quick check then.
        let usable = if syntax.fold == Fold::Unicode {
            0
        } else {
            prefix.len().min(8)
        };
        let mask = if usable == 0 {
            0
        } else {
            u64::MAX >> (8 * (8 - usable))
        };
        Pat {
            head: head_of(prefix, syntax.fold) & mask,
            mask,
            shape,
            fold: syntax.fold,
        }
    }

    /// The `(head, mask)` quick-reject pair: a text whose [`head_of`] `h`
    /// has `h & mask != head` cannot match.
    pub(crate) fn quick(&self) -> (u64, u64) {
        (self.head, self.mask)
    }

    /// Like [`Pat::matches`], with `head` = [`head_of`]`(text, fold)`
    /// precomputed by the caller for a quick reject.
    #[inline]
    pub(crate) fn matches_head(&self, text: &str, head: u64, facts: &dyn Facts) -> bool {
        head & self.mask == self.head && self.matches(text, facts)
    }

    /// Like [`Pat::matches_head`] for a [`Fold::Ascii`] pattern, where the
    /// caller has already ASCII-lower-cased `lowered` (so plain byte
    /// comparison is enough).
    #[inline]
    pub(crate) fn matches_lowered(&self, lowered: &str, head: u64, facts: &dyn Facts) -> bool {
        if head & self.mask != self.head {
            return false;
        }
        match &self.shape {
            Shape::Any => true,
            Shape::Exact(s) => lowered == s,
            Shape::Prefix(p) => lowered.as_bytes().starts_with(p.as_bytes()),
            Shape::Parts(parts) => glob(parts, lowered, false, facts),
        }
    }

    /// Matches `text` against this pattern, resolving variables via `facts`.
    #[inline]
    pub(crate) fn matches(&self, text: &str, facts: &dyn Facts) -> bool {
        match (&self.shape, self.fold) {
            (Shape::Any, _) => true,
            (Shape::Exact(s), Fold::None) => text == s,
            (Shape::Prefix(p), Fold::None) => text.as_bytes().starts_with(p.as_bytes()),
            _ => self.matches_slow(text, facts),
        }
    }

    #[inline(never)]
    fn matches_slow(&self, text: &str, facts: &dyn Facts) -> bool {
        match &self.shape {
            Shape::Any => true,
            Shape::Exact(s) => lit_eq(text, s, self.fold),
            Shape::Prefix(p) => match text.get(..p.len()) {
                Some(head) => lit_eq(head, p, self.fold),
                None => false,
            },
            Shape::Parts(parts) => {
                if self.fold == Fold::Unicode {
                    unicode_parts_eq(parts, text, facts)
                } else {
                    glob(parts, text, self.fold == Fold::Ascii, facts)
                }
            }
        }
    }
}

/// Splits `text` into parts, merging adjacent literal text.
fn tokenize(text: &str, syntax: Syntax) -> Vec<Part> {
    let mut parts: Vec<Part> = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if syntax.variables && rest.starts_with("${") {
            if let Some(end) = rest.find('}') {
                let inner = rest.get(2..end).unwrap_or("");
                rest = rest.get(end + 1..).unwrap_or("");
                match inner {
                    "*" | "?" | "$" => lit.push_str(inner),
                    _ => match variable(inner) {
                        Some(var) => {
                            flush(&mut parts, &mut lit, syntax.fold);
                            parts.push(var);
                        }
                        None => {
                            lit.push_str("${");
                            lit.push_str(inner);
                            lit.push('}');
                        }
                    },
                }
                continue;
            }
        }
        rest = rest.get(c.len_utf8()..).unwrap_or("");
        match c {
            '*' if syntax.wildcards => {
                flush(&mut parts, &mut lit, syntax.fold);
                if parts.last() != Some(&Part::Star) {
                    parts.push(Part::Star);
                }
            }
            '?' if syntax.wildcards => {
                flush(&mut parts, &mut lit, syntax.fold);
                parts.push(Part::One);
            }
            _ => lit.push(c),
        }
    }
    flush(&mut parts, &mut lit, syntax.fold);
    parts
}

fn flush(parts: &mut Vec<Part>, lit: &mut String, fold: Fold) {
    if lit.is_empty() {
        return;
    }
    let text = std::mem::take(lit);
    let text = match fold {
        Fold::None => text,
        Fold::Ascii => text.to_ascii_lowercase(),
        Fold::Unicode => text.to_lowercase(),
    };
    parts.push(Part::Lit(text));
}

/// Parses the inside of `${...}`: `key` or `key, 'default'`.
fn variable(inner: &str) -> Option<Part> {
    let (key, default) = match inner.split_once(',') {
        Some((key, default)) => {
            let default = default.trim();
            let default = default
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .unwrap_or(default);
            (key.trim(), Some(default.to_string()))
        }
        None => (inner.trim(), None),
    };
    if key.is_empty() {
        return None;
    }
    Some(Part::Var {
        key: key.to_lowercase(),
        default,
    })
}

/// Resolves a variable: the key's single value, else its default.
pub(crate) fn resolve<'f>(
    key: &str,
    default: Option<&'f str>,
    facts: &'f dyn Facts,
) -> Option<&'f str> {
    match facts.get(key) {
        Some([one]) => Some(one.as_str()),
        Some([]) | None => default,
        // A multivalued key cannot be used as a policy variable.
        Some(_) => None,
    }
}

fn lit_eq(text: &str, lit: &str, fold: Fold) -> bool {
    match fold {
        Fold::None => text == lit,
        Fold::Ascii => text.eq_ignore_ascii_case(lit),
        Fold::Unicode => text.chars().flat_map(char::to_lowercase).eq(lit.chars()),
    }
}

fn starts_with(text: &str, lit: &str, ascii_fold: bool) -> bool {
    match text.get(..lit.len()) {
        Some(head) if ascii_fold => head.eq_ignore_ascii_case(lit),
        Some(head) => head == lit,
        None => false,
    }
}

/// Case-insensitive equality of `text` with the concatenation of `parts`
/// (literals and variables only; wildcards never occur in this mode).
fn unicode_parts_eq(parts: &[Part], text: &str, facts: &dyn Facts) -> bool {
    for part in parts {
        if let Part::Var { key, default } = part {
            if resolve(key, default.as_deref(), facts).is_none() {
                return false;
            }
        }
    }
    let pattern = parts.iter().flat_map(|part| {
        let piece: &str = match part {
            Part::Lit(s) => s,
            Part::Var { key, default } => resolve(key, default.as_deref(), facts).unwrap_or(""),
            Part::Star => "*",
            Part::One => "?",
        };
        piece.chars().flat_map(char::to_lowercase)
    });
    // Literal parts are already lower-cased; lower-casing again is a no-op
    // for them but folds the substituted variable values.
    text.chars().flat_map(char::to_lowercase).eq(pattern)
}

/// General glob match with a single backtracking point (the last `*`).
/// Variable values are matched as literal text.
fn glob(parts: &[Part], text: &str, ascii_fold: bool, facts: &dyn Facts) -> bool {
    let mut p = 0usize;
    let mut t = 0usize;
    // (index of the part after the last `*`, text offset it was tried at)
    let mut star: Option<(usize, usize)> = None;
    loop {
        let rest = text.get(t..).unwrap_or("");
        let step = match parts.get(p) {
            Some(Part::Star) => {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(Part::One) => rest.chars().next().map(char::len_utf8),
            Some(Part::Lit(s)) => starts_with(rest, s, ascii_fold).then_some(s.len()),
            Some(Part::Var { key, default }) => match resolve(key, default.as_deref(), facts) {
                Some(value) => starts_with(rest, value, ascii_fold).then_some(value.len()),
                None => return false,
            },
            None if rest.is_empty() => return true,
            None => None,
        };
        match step {
            Some(n) => {
                t += n;
                p += 1;
            }
            None => {
                let Some((after_star, tried)) = star else {
                    return false;
                };
                let Some(c) = text.get(tried..).and_then(|r| r.chars().next()) else {
                    return false;
                };
                let next = tried + c.len_utf8();
                star = Some((after_star, next));
                p = after_star;
                t = next;
            }
        }
    }
}

/// A compiled ARN pattern, matched segment-wise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnPat {
    /// `*`: matches everything, including non-ARN text.
    Any,
    /// partition, service, region, account, resource.
    Segments(Box<[Pat; 5]>),
    /// Not in ARN format (only accepted in ARN condition values): matched
    /// as a plain glob over the whole text.
    Plain(Pat),
}

impl ArnPat {
    /// Compiles an ARN pattern; `None` when `text` is neither `*` nor an ARN
    /// (`arn:` followed by at least five more colon-separated parts).
    pub(crate) fn compile(text: &str, variables: bool) -> Option<ArnPat> {
        let syntax = Syntax {
            wildcards: true,
            variables,
            fold: Fold::None,
        };
        if text == "*" {
            return Some(ArnPat::Any);
        }
        let [arn, partition, service, region, account, resource] = split_arn(text, variables)?;
        if arn != "arn" {
            return None;
        }
        let seg = |s: &str| Pat::compile(s, syntax);
        Some(ArnPat::Segments(Box::new([
            seg(partition),
            seg(service),
            seg(region),
            seg(account),
            seg(resource),
        ])))
    }

    /// Compiles an ARN condition value, falling back to a plain glob when it
    /// is not in ARN format.
    pub(crate) fn compile_lenient(text: &str, variables: bool) -> ArnPat {
        ArnPat::compile(text, variables).unwrap_or_else(|| {
            ArnPat::Plain(Pat::compile(
                text,
                Syntax {
                    wildcards: true,
                    variables,
                    fold: Fold::None,
                },
            ))
        })
    }

    /// Matches a request value that has already been split with [`arn_parts`].
    pub(crate) fn matches(&self, text: &str, parts: Option<&[&str; 5]>, facts: &dyn Facts) -> bool {
        match self {
            ArnPat::Any => true,
            ArnPat::Plain(pat) => pat.matches(text, facts),
            ArnPat::Segments(segs) => match parts {
                Some(parts) => segs
                    .iter()
                    .zip(parts.iter())
                    .all(|(pat, part)| pat.matches(part, facts)),
                None => false,
            },
        }
    }

    /// Matches a prepared request ARN; the resource part (the most selective)
    /// is compared first.
    pub(crate) fn matches_prepared(&self, arn: &PreparedArn<'_>, facts: &dyn Facts) -> bool {
        match self {
            ArnPat::Any => true,
            ArnPat::Plain(pat) => pat.matches(arn.text, facts),
            ArnPat::Segments(segs) => match &arn.parts {
                Some(parts) => segs
                    .iter()
                    .zip(parts.iter())
                    .zip(arn.heads.iter())
                    .rev()
                    .all(|((pat, part), &head)| pat.matches_head(part, head, facts)),
                None => false,
            },
        }
    }
}

/// A request ARN split into segments once per evaluation.
#[derive(Debug, Clone)]
pub(crate) struct PreparedArn<'a> {
    text: &'a str,
    parts: Option<[&'a str; 5]>,
    heads: [u64; 5],
}

impl<'a> PreparedArn<'a> {
    /// Splits `text` (an ARN, `*` or anything else).
    pub(crate) fn new(text: &'a str) -> PreparedArn<'a> {
        let parts = arn_parts(text);
        let heads = parts.map_or([0; 5], |p| p.map(|s| head_of(s, Fold::None)));
        PreparedArn { text, parts, heads }
    }
}

/// Splits a request ARN into partition, service, region, account, resource.
pub(crate) fn arn_parts(text: &str) -> Option<[&str; 5]> {
    let mut it = text.splitn(6, ':');
    if it.next()? != "arn" {
        return None;
    }
    Some([it.next()?, it.next()?, it.next()?, it.next()?, it.next()?])
}

/// Splits a policy ARN pattern into its six parts at the first five colons
/// outside `${...}` variables.
fn split_arn(text: &str, variables: bool) -> Option<[&str; 6]> {
    let mut cuts = [0usize; 5];
    let mut found = 0usize;
    let mut depth_end: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if found == 5 {
            break;
        }
        if let Some(end) = depth_end {
            if i < end {
                continue;
            }
            depth_end = None;
        }
        if variables && c == '$' && text.get(i + 1..i + 2) == Some("{") {
            if let Some(close) = text.get(i..).and_then(|r| r.find('}')) {
                depth_end = Some(i + close + 1);
                continue;
            }
        }
        if c == ':' {
            if let Some(cut) = cuts.get_mut(found) {
                *cut = i;
            }
            found += 1;
        }
    }
    if found < 5 {
        return None;
    }
    let piece = |from: usize, to: usize| text.get(from..to);
    Some([
        piece(0, cuts[0])?,
        piece(cuts[0] + 1, cuts[1])?,
        piece(cuts[1] + 1, cuts[2])?,
        piece(cuts[2] + 1, cuts[3])?,
        piece(cuts[3] + 1, cuts[4])?,
        text.get(cuts[4] + 1..)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::MapFacts;

    const GLOB: Syntax = Syntax {
        wildcards: true,
        variables: true,
        fold: Fold::None,
    };

    fn m(pattern: &str, text: &str) -> bool {
        Pat::compile(pattern, GLOB).matches(text, &MapFacts::default())
    }

    #[test]
    fn shapes() {
        assert_eq!(Pat::compile("*", GLOB).shape, Shape::Any);
        assert_eq!(Pat::compile("**", GLOB).shape, Shape::Any);
        assert_eq!(Pat::compile("abc", GLOB).shape, Shape::Exact("abc".into()));
        assert_eq!(Pat::compile("ab*", GLOB).shape, Shape::Prefix("ab".into()));
        assert_eq!(
            Pat::compile("a${*}b", GLOB).shape,
            Shape::Exact("a*b".into())
        );
        assert!(matches!(Pat::compile("a*b", GLOB).shape, Shape::Parts(_)));
    }

    #[test]
    fn globbing() {
        assert!(m("a*b", "ab"));
        assert!(m("a*b", "axxb"));
        assert!(!m("a*b", "axxbc"));
        assert!(m("a*b*c", "abbbcbc"));
        assert!(m("?", "é"));
        assert!(!m("?", ""));
        assert!(!m("??", "a"));
        assert!(m("*a?", "bbab"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("a${?}", "a?"));
        assert!(!m("a${?}", "ab"));
        assert!(m("${$}{x}", "${x}"));
        assert!(m("${unterminated", "${unterminated"));
        assert!(m("*ü*", "aüb"));
    }

    #[test]
    fn variables() {
        let facts = MapFacts::new(&[("aws:username", &["dev"]), ("aws:tags", &["a", "b"])]);
        let pat = Pat::compile("home/${aws:UserName}/*", GLOB);
        assert!(pat.matches("home/dev/x", &facts));
        assert!(!pat.matches("home/other/x", &facts));
        let multi = Pat::compile("${aws:tags}", GLOB);
        assert!(!multi.matches("a", &facts));
        let missing = Pat::compile("${aws:userid}", GLOB);
        assert!(!missing.matches("", &facts));
        let default = Pat::compile("${aws:userid, 'anon'}", GLOB);
        assert!(default.matches("anon", &facts));
        let star_value = MapFacts::new(&[("aws:username", &["*"])]);
        assert!(!pat.matches("home/dev/x", &star_value));
        assert!(pat.matches("home/*/x", &star_value));
    }

    #[test]
    fn arn_split() {
        assert_eq!(
            split_arn("arn:aws:s3:::b/${aws:username}:x", true),
            Some(["arn", "aws", "s3", "", "", "b/${aws:username}:x"])
        );
        assert_eq!(split_arn("arn:aws:s3::", true), None);
        assert_eq!(
            split_arn("arn:${a:b}:c:d:e:f", false),
            Some(["arn", "${a", "b}", "c", "d", "e:f"])
        );
        assert_eq!(
            arn_parts("arn:aws:ecs:us-east-1:1:cluster/a:b"),
            Some(["aws", "ecs", "us-east-1", "1", "cluster/a:b"])
        );
        assert_eq!(arn_parts("arn:aws:ecs"), None);
        assert_eq!(arn_parts("*"), None);
    }
}
