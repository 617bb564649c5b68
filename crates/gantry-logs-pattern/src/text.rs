//! Unstructured (term) patterns such as `ERROR -DEBUG "Connection refused"`.
//!
//! * A term matches when it occurs in the message as a case-sensitive substring
//!   (`ERROR` matches `ERRORCODE`).
//! * Unquoted terms may only contain alphanumeric characters and `_`; anything else
//!   must be written inside double quotes, which also form exact phrases.
//! * `-term` excludes messages containing the term.
//! * `?term` terms are alternatives: at least one must occur. As documented by AWS,
//!   when a pattern mixes `?` terms with plain or `-` terms, the `?` terms are ignored
//!   (`?ERROR ?ARGUMENTS REQUEST` matches every event containing `REQUEST`).
//! * A quoted phrase that is empty or only whitespace (`" "`) matches every event.

use crate::parse::quoted;
use crate::PatternError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Include,
    Exclude,
    Optional,
}

#[derive(Debug, Clone)]
struct Term {
    kind: Kind,
    text: String,
}

impl Term {
    /// Whether the message contains the term; blank phrases occur everywhere.
    fn occurs_in(&self, message: &str) -> bool {
        self.text.trim().is_empty() || message.contains(self.text.as_str())
    }
}

/// A compiled term pattern.
#[derive(Debug, Clone)]
pub(crate) struct TermPattern {
    include: Vec<Term>,
    exclude: Vec<Term>,
    /// Empty unless the pattern consists of `?` terms only.
    optional: Vec<Term>,
}

impl TermPattern {
    /// Parses the term pattern `pattern[start..end]`.
    pub(crate) fn parse(
        pattern: &str,
        start: usize,
        end: usize,
    ) -> Result<TermPattern, PatternError> {
        let chars: Vec<(usize, char)> = pattern
            .get(start..end)
            .unwrap_or("")
            .char_indices()
            .map(|(i, c)| (start + i, c))
            .collect();
        let at = |i: usize| chars.get(i).map_or(end, |&(o, _)| o);
        let ch = |i: usize| chars.get(i).map(|&(_, c)| c);
        let mut terms = Vec::new();
        let mut i = 0;
        while let Some(c) = ch(i) {
            if c.is_whitespace() {
                i += 1;
                continue;
            }
            let start = i;
            let kind = match c {
                '?' => Kind::Optional,
                '-' => Kind::Exclude,
                _ => Kind::Include,
            };
            if kind != Kind::Include {
                i += 1;
            }
            let text = match ch(i) {
                Some(next) if kind != Kind::Include && next.is_whitespace() => {
                    return Err(PatternError::at(
                        pattern,
                        at(start),
                        format_args!("'{c}' must be followed by a term"),
                    ))
                }
                None => {
                    return Err(PatternError::at(
                        pattern,
                        at(start),
                        format_args!("'{c}' must be followed by a term"),
                    ))
                }
                Some('"') => {
                    let (text, next) = quoted(&chars, i).ok_or_else(|| {
                        PatternError::at(pattern, at(i), "unterminated quoted string")
                    })?;
                    if ch(next).is_some_and(|c| !c.is_whitespace()) {
                        return Err(PatternError::at(
                            pattern,
                            at(next),
                            "a quoted phrase must be followed by a space or the end of the pattern",
                        ));
                    }
                    i = next;
                    text
                }
                Some(_) => {
                    let word_start = i;
                    while ch(i).is_some_and(|c| !c.is_whitespace()) {
                        i += 1;
                    }
                    let word = pattern.get(at(word_start)..at(i)).unwrap_or("");
                    check_unquoted(pattern, at(word_start), word)?;
                    word.to_string()
                }
            };
            terms.push(Term { kind, text });
        }
        let (mut include, mut exclude, mut optional) = (Vec::new(), Vec::new(), Vec::new());
        for term in terms {
            match term.kind {
                Kind::Include => include.push(term),
                Kind::Exclude => exclude.push(term),
                Kind::Optional => optional.push(term),
            }
        }
        if !include.is_empty() || !exclude.is_empty() {
            optional.clear();
        }
        Ok(TermPattern {
            include,
            exclude,
            optional,
        })
    }

    pub(crate) fn matches(&self, message: &str) -> bool {
        self.include.iter().all(|t| t.occurs_in(message))
            && !self.exclude.iter().any(|t| t.occurs_in(message))
            && (self.optional.is_empty() || self.optional.iter().any(|t| t.occurs_in(message)))
    }

    /// Literals every matching message contains.
    pub(crate) fn required_literals(&self) -> Vec<String> {
        let mut out: Vec<String> = self.include.iter().map(|t| t.text.clone()).collect();
        if let [only] = self.optional.as_slice() {
            out.push(only.text.clone());
        }
        out
    }
}

/// Checks that an unquoted term only holds characters that need no quoting.
fn check_unquoted(pattern: &str, start: usize, word: &str) -> Result<(), PatternError> {
    let Some((offset, bad)) = word
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
    else {
        return Ok(());
    };
    let what = match bad {
        '%' if offset == 0 => format!(
            "'{word}': a regular expression (%...%) must be the whole pattern and cannot be combined with terms"
        ),
        '"' => format!("unexpected '\"' inside the term '{word}'"),
        '{' | '[' if offset == 0 => format!(
            "'{word}': JSON ({{...}}) and space-delimited ([...]) patterns must be the whole pattern"
        ),
        _ => format!(
            "the term '{word}' contains the character '{bad}'; terms with characters other than \
             letters, digits and '_' must be enclosed in double quotes"
        ),
    };
    Err(PatternError::at(pattern, start + offset, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_mark_terms_are_dropped_next_to_other_terms() {
        let p = TermPattern::parse("?ERROR ?ARGUMENTS -REQUEST", 0, 26).unwrap();
        assert!(p.optional.is_empty());
        assert!(p.matches("nothing to see"));
        assert!(!p.matches("ERROR REQUEST"));
    }

    #[test]
    fn required_literals_of_a_single_alternative() {
        let p = TermPattern::parse("?ERROR", 0, 6).unwrap();
        assert_eq!(p.required_literals(), vec!["ERROR".to_string()]);
        let p = TermPattern::parse("?ERROR ?WARN", 0, 12).unwrap();
        assert!(p.required_literals().is_empty());
    }
}
